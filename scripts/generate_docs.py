"""Write the documentation's generated parts from the code, so they cannot drift from it.

    python scripts/generate_docs.py            # rewrite them
    python scripts/generate_docs.py --check    # exit 1, naming each stale file, if any differs

- docs/generated/settings.md: the ``FIRSTSPIKE_*`` settings (service/settings.py)
- docs/generated/metrics.md: every metric the service registers (service/metrics.py)
- docs/generated/endpoints.md and docs/reference/openapi.json: the app's OpenAPI schema
- docs/generated/dashboard.md: the Grafana dashboard's panels and their queries
- docs/generated/alerts.md: the Prometheus alert rules
- docs/generated/answer.md: the fields of an answer and of an error (service/http/schemas.py)

The tables are Markdown snippets that the hand-written pages include (pymdownx.snippets).
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import BaseModel

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing it

DOCS = ROOT / "docs"
ALERTS = ROOT / "docker" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "docker" / "grafana" / "dashboards" / "firstspike-decision-time.json"
HTTP_METHODS = ("get", "post", "put", "patch", "delete")


def _cell(text: str) -> str:
    """``text`` as one Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _notice(source: str) -> str:
    """The comment that heads a generated file."""
    return f"<!-- generated from {source} by scripts/generate_docs.py: do not edit by hand -->\n\n"


def settings_table() -> str:
    """The ``FIRSTSPIKE_*`` settings: variable, default, meaning."""
    from service.settings import Settings

    rows = []
    for name, field in Settings.model_fields.items():
        if not field.description:
            raise SystemExit(
                f"generate_docs: the setting {name!r} has no description (Field(description=...))"
            )
        default = field.get_default(call_default_factory=True)
        if default is None or default == []:
            shown = "unset"
        elif isinstance(default, bool):
            shown = f"`{str(default).lower()}`"
        else:
            shown = f"`{default}`"
        rows.append((f"`FIRSTSPIKE_{name.upper()}`", shown, field.description))
    return _notice("service/settings.py") + _table(("variable", "default", "meaning"), rows)


def metrics_table() -> str:
    """Every metric the service registers: name, type, labels, meaning."""
    from prometheus_client.metrics import Histogram, MetricWrapperBase

    from service.metrics import Metrics

    rows = []
    for metric in vars(Metrics()).values():
        if not isinstance(metric, MetricWrapperBase):
            continue
        family = next(iter(metric.describe()))
        name = family.name + ("_total" if family.type == "counter" else "")
        # Labels are only readable from the wrapper: a family without samples does not list them.
        labels = ", ".join(f"`{label}`" for label in metric._labelnames)
        if isinstance(metric, Histogram):
            bounds = [bound for bound in metric._upper_bounds if bound != float("inf")]
            kind = f"histogram ({len(bounds)} buckets, {bounds[0]:g} to {bounds[-1]:g})"
        else:
            kind = family.type
        rows.append((f"`{name}`", kind, labels, family.documentation))
    return _notice("service/metrics.py") + _table(("metric", "type", "labels", "meaning"), rows)


def _type_name(annotation: object) -> str:
    """A field's type as the table shows it."""
    text = getattr(annotation, "__name__", None) if isinstance(annotation, type) else None
    return text or str(annotation).replace("typing.", "")


def _fields(model: type[BaseModel], prefix: str = "") -> list[tuple[str, ...]]:
    """(name, type, description) of each field of ``model``, nested models' fields after theirs."""
    from pydantic import BaseModel

    rows: list[tuple[str, ...]] = []
    for name, field in model.model_fields.items():
        nested = (
            field.annotation
            if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
            else None
        )
        if not field.description:
            raise SystemExit(
                f"generate_docs: {model.__name__}.{name} has no description (Field(description=...))"
            )
        rows.append(
            (
                f"`{prefix}{name}`",
                "object" if nested else f"`{_type_name(field.annotation)}`",
                field.description,
            )
        )
        if nested:
            rows += _fields(nested, f"{prefix}{name}.")
    return rows


def answer_table() -> str:
    """The fields of an answer, of a stream's decision and of an error."""
    from service.http.schemas import Classification, ErrorBody, StreamClassification

    extra = [
        row for row in _fields(StreamClassification) if row[0] not in {r[0] for r in _fields(Classification)}
    ]
    return (
        _notice("service/http/schemas.py")
        + "The answer (`/classify`; a stream's decision adds the last rows):\n\n"
        + _table(("field", "type", "meaning"), _fields(Classification) + extra)
        + "\nErrors:\n\n"
        + _table(("field", "type", "meaning"), _fields(ErrorBody))
    )


@functools.cache
def _schema() -> dict[str, Any]:
    """The app's OpenAPI schema."""
    from service.app import create_app
    from service.settings import Settings

    with tempfile.TemporaryDirectory() as store:  # the schema does not depend on the models
        return create_app(Settings(model_store=Path(store), log_requests=False)).openapi()


def openapi_json() -> str:
    """The OpenAPI schema as the JSON file the docs link to."""
    return json.dumps(_schema(), indent=2) + "\n"


def endpoints_table() -> str:
    """Every endpoint of the schema: method and path, summary, documented statuses."""
    rows = []
    for path, operations in _schema()["paths"].items():
        for method, operation in operations.items():
            if method in HTTP_METHODS:
                statuses = ", ".join(sorted(operation.get("responses", {})))
                rows.append((f"`{method.upper()} {path}`", operation.get("summary", ""), statuses))
    return _notice("the app's OpenAPI schema") + _table(("endpoint", "summary", "documented statuses"), rows)


def dashboard_table() -> str:
    """The Grafana dashboard's panels: title, description, queries."""
    dashboard = json.loads(DASHBOARD.read_text())
    rows = []
    for panel in dashboard["panels"]:
        if panel.get("type") == "row":
            continue
        queries = "<br>".join(f"`{target['expr']}`" for target in panel.get("targets", []))
        rows.append((panel["title"], panel.get("description", ""), queries))
    title = dashboard["title"]
    return (
        _notice(DASHBOARD.relative_to(ROOT).as_posix())
        + f'Dashboard "{title}", variables `model` and `version` (`$__rate_interval` is Grafana\'s):\n\n'
        + _table(("panel", "shows", "query"), rows)
    )


def alerts_table() -> str:
    """The Prometheus alert rules: name, severity, for, expression, summary."""
    import yaml

    rows = []
    for group in yaml.safe_load(ALERTS.read_text())["groups"]:
        for rule in group["rules"]:
            expression = " ".join(rule["expr"].split())
            rows.append(
                (
                    f"`{rule['alert']}`",
                    rule.get("labels", {}).get("severity", ""),
                    rule.get("for", ""),
                    f"`{expression}`",
                    rule["annotations"]["summary"],
                )
            )
    return _notice(ALERTS.relative_to(ROOT).as_posix()) + _table(
        ("alert", "severity", "for", "fires when", "summary"), rows
    )


OUTPUTS: dict[str, Callable[[], str]] = {
    "generated/settings.md": settings_table,
    "generated/metrics.md": metrics_table,
    "generated/endpoints.md": endpoints_table,
    "generated/dashboard.md": dashboard_table,
    "generated/answer.md": answer_table,
    "generated/alerts.md": alerts_table,
    "reference/openapi.json": openapi_json,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 if a file is stale")
    parser.add_argument("--docs", type=Path, default=DOCS, help="the documentation folder (default: docs/)")
    args = parser.parse_args(argv)
    stale = []
    for relative, make in OUTPUTS.items():
        path = args.docs / relative
        text = make()
        current = path.read_text() if path.exists() else None
        if current == text:
            continue
        stale.append(relative)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if args.check and stale:
        print(
            f"stale generated docs (run python scripts/generate_docs.py): {', '.join(stale)}", file=sys.stderr
        )
        return 1
    for relative in stale:
        print(f"wrote {args.docs / relative}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
