"""Mappings from configs and manifests become dataclasses only with known keys: a typo is an
error that names it, never a silently ignored setting."""

from __future__ import annotations

from dataclasses import fields


def refuse_unknown(values: dict, cls: type, what: str, show_known: bool = False) -> None:
    """Raise ``ValueError("unknown <what>: a, b")`` for keys of ``values`` that are not fields of
    dataclass ``cls`` (with ``show_known``, the known ones are listed too)."""
    known = {field.name for field in fields(cls)}
    unknown = set(values) - known
    if unknown:
        message = f"unknown {what}: {', '.join(sorted(unknown))}"
        raise ValueError(message + (f" (known: {', '.join(sorted(known))})" if show_known else ""))
