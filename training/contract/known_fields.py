"""Mappings from configs and manifests become dataclasses only with known keys: a typo is an
error that names it, never a silently ignored setting."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields


def refuse_unknown(values: Mapping[str, object], cls: type, what: str, show_known: bool = False) -> None:
    """Refuse keys of ``values`` that are not fields of the dataclass ``cls``.

    Args:
        values: the mapping about to become ``cls``.
        cls: the dataclass whose fields are the known keys.
        what: what the keys are, for the message (``"network spec fields"``).
        show_known: also list the known keys in the message.

    Raises:
        ValueError: ``unknown <what>: a, b``, naming every unknown key.
    """
    known = {field.name for field in fields(cls)}
    unknown = set(values) - known
    if unknown:
        message = f"unknown {what}: {', '.join(sorted(unknown))}"
        raise ValueError(message + (f" (known: {', '.join(sorted(known))})" if show_known else ""))
