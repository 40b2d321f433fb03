"""Fixtures more than one group of tests uses, and the group markers.

The tests are grouped by folder, and each test gets its folder's marker: ``tests/unit`` (and
``tests/test_boundaries.py``) ``unit``, ``tests/e2e`` ``e2e``, ``tests/slim`` ``slim``,
``tests/deploy`` ``deploy``. Helpers the tests import are in ``tests/helpers.py``; fixtures of
one group only are in that group's conftest.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.helpers import MODEL_STORE

TESTS = Path(__file__).resolve().parent
GROUPS = ("unit", "e2e", "slim", "deploy")  # the folders, and their markers (pyproject.toml)
TOP_LEVEL_GROUP = "unit"  # tests/test_boundaries.py: quick, and run by `make test-fast`


def pytest_collection_modifyitems(config, items):
    for item in items:
        try:
            parts = Path(item.path).resolve().relative_to(TESTS).parts
        except ValueError:
            continue
        group = TOP_LEVEL_GROUP if len(parts) == 1 else parts[0]
        if group in GROUPS:
            item.add_marker(group)


def copy_without_onnx(version_dir: Path, destination: Path) -> Path:
    """A copy of a model version as ``firstspike export`` without ``--onnx`` writes it: the
    weights, no ONNX graphs, and a manifest that lists none."""
    shutil.copytree(version_dir, destination)
    manifest = json.loads((destination / "manifest.json").read_text())
    for graph in manifest.pop("onnx").values():
        if isinstance(graph, dict):
            del manifest["files"][graph["file"]]
            (destination / graph["file"]).unlink()
    (destination / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return destination


@pytest.fixture(scope="module")
def graphs_and_none_store(tmp_path_factory) -> Path:
    """``digits/1`` as shipped (with ONNX graphs) and ``digits/2``, the same weights without."""
    root = tmp_path_factory.mktemp("graphs-and-none")
    shutil.copytree(MODEL_STORE / "digits" / "1", root / "digits" / "1")
    copy_without_onnx(MODEL_STORE / "digits" / "1", root / "digits" / "2")
    return root
