"""The documentation: the site builds strictly, its generated tables match the code, and the
README stays a short front door whose links all resolve."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = ROOT / "scripts" / "generate_docs.py"
MKDOCS = Path(sys.executable).with_name("mkdocs")


def _generate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(GENERATOR), *args], capture_output=True, text=True, timeout=120
    )


def test_generated_docs_match_the_code():
    generated = sorted((ROOT / "docs" / "generated").glob("*.md")) + [ROOT / "docs/reference/openapi.json"]
    before = {path: path.stat().st_mtime_ns for path in generated}
    result = _generate("--check")
    assert result.returncode == 0, result.stderr
    assert {path: path.stat().st_mtime_ns for path in generated} == before, "--check must write nothing"


def test_a_stale_generated_table_is_named(tmp_path):
    docs = tmp_path / "docs"
    shutil.copytree(ROOT / "docs" / "generated", docs / "generated")
    shutil.copytree(ROOT / "docs" / "reference", docs / "reference")
    settings = docs / "generated" / "settings.md"
    settings.write_text(settings.read_text().replace("FIRSTSPIKE_MAX_QUEUE", "FIRSTSPIKE_MAX_QUEUE_OLD"))
    result = _generate("--check", "--docs", str(docs))
    assert result.returncode == 1
    assert "generated/settings.md" in result.stderr and "generated/metrics.md" not in result.stderr
    assert _generate("--docs", str(docs)).returncode == 0  # rewriting brings it back in line
    assert _generate("--check", "--docs", str(docs)).returncode == 0


def test_generated_tables_list_every_setting_and_metric():
    from prometheus_client.metrics import MetricWrapperBase

    from service.metrics import Metrics
    from service.settings import Settings

    settings = (ROOT / "docs/generated/settings.md").read_text()
    for name in Settings.model_fields:
        assert f"`FIRSTSPIKE_{name.upper()}`" in settings
    metrics = (ROOT / "docs/generated/metrics.md").read_text()
    for metric in vars(Metrics()).values():
        if isinstance(metric, MetricWrapperBase):
            assert f"`{metric.describe()[0].name}" in metrics


@pytest.mark.slow
def test_site_builds_strictly(tmp_path):
    site = tmp_path / "site"
    result = subprocess.run(
        [str(MKDOCS), "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    settings_page = (site / "settings" / "index.html").read_text()
    assert "FIRSTSPIKE_MAX_STREAMS" in settings_page and "--8&lt;" not in settings_page, (
        "snippet not included"
    )
    assert "lif_step" in (site / "reference" / "python" / "index.html").read_text(), "no API reference"
    assert (site / "reference" / "openapi.json").is_file()


def test_readme_is_a_front_door():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) < 150
    for command in ("make run", "make test", "curl "):
        assert command in readme
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme)
    assert links
    for link in links:
        if "://" not in link:
            assert (ROOT / link).exists(), f"README links to a missing {link}"
