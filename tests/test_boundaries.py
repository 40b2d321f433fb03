"""The architecture's boundaries (README, "Layout"), checked on the source and on what imports load.

- The service reaches training only through the torch-free contract (``training.contract``) and
  the package root (its version), plus ``training.network`` for the torch runtime.
- No module in ``service/`` imports torch at module level, and importing the service, with the
  onnx runtime, loads no torch at all (the slim image has none).
- The product (``service/``, ``training/``) never imports ``benchmarks/``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
TORCH_RUNTIME = Path("service/inference/runtimes/torch_runtime.py")


def _python_files(folder: str) -> list[Path]:
    return sorted(path.relative_to(ROOT) for path in (ROOT / folder).rglob("*.py"))


def _imports(path: Path, module_level_only: bool = False) -> list[tuple[int, str]]:
    """(line, module) of every import in ``path``: every statement, or those at module level only."""
    tree = ast.parse((ROOT / path).read_text(), str(path))
    nodes = tree.body if module_level_only else list(ast.walk(tree))
    found = []
    for node in nodes:
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_the_service_reaches_training_only_through_the_contract():
    allowed = ("training.contract",)
    offending = []
    for path in _python_files("service"):
        for line, module in _imports(path):
            if not _within(module, "training") or module == "training":
                continue
            if any(_within(module, package) for package in allowed):
                continue
            if path == TORCH_RUNTIME and _within(module, "training.network"):
                continue
            offending.append(f"{path}:{line} imports {module}")
    assert offending == []


def test_no_service_module_imports_torch_at_module_level():
    offending = [
        f"{path}:{line} imports {module}"
        for path in _python_files("service")
        for line, module in _imports(path, module_level_only=True)
        if _within(module, "torch")
    ]
    assert offending == []


def test_the_product_never_imports_the_benchmarks():
    offending = [
        f"{path}:{line} imports {module}"
        for folder in ("service", "training")
        for path in _python_files(folder)
        for line, module in _imports(path)
        if _within(module, "benchmarks")
    ]
    assert offending == []


# Modules that serve no request: training itself, its data, and the benchmarks.
TRAINING_ONLY = (
    "training.data",
    "training.trainer",
    "training.losses",
    "training.config",
    "training.evaluate",
    "training.distributed",
    "sklearn",
    "torchvision",
    "benchmarks",
)


@pytest.mark.parametrize(
    "extra_modules, banned",
    [
        # Serving with onnx: no torch, and nothing of training beyond the contract.
        ((), ("torch", "training.network", "training.store", *TRAINING_ONLY)),
        # The torch runtime adds training.network (and torch), still nothing training-only.
        (("service.inference.runtimes.torch_runtime",), TRAINING_ONLY),
    ],
)
def test_importing_the_service_loads_only_what_serving_needs(extra_modules, banned):
    modules = [
        "service.app",
        "service.server",
        "service.http.worker",
        "service.inference.runtimes.onnx_runtime",
        "service.cli",
        *extra_modules,
    ]
    probe = (
        f"import importlib, sys; [importlib.import_module(m) for m in {modules!r}]; "
        f"print(','.join(sorted(m for m in sys.modules if m.startswith({banned!r}))))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == ""
