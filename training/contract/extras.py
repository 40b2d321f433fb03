"""Which pip extra brings a missing optional dependency, so that the CLI and the service say so
in one line instead of "No module named 'torch'". Standard library only: it runs where the
dependency is missing."""

from __future__ import annotations

# top-level module -> (what users call it, the smallest extra that installs it; None: the core)
PACKAGES = {
    "torch": ("PyTorch", "torch"),
    "safetensors": ("safetensors", "torch"),
    "sklearn": ("scikit-learn", "train"),
    "yaml": ("PyYAML", "train"),
    "tqdm": ("tqdm", "train"),
    "onnx": ("onnx", "train"),
    "onnxscript": ("onnxscript", "train"),
    "matplotlib": ("matplotlib", "train"),
    "onnxruntime": ("onnxruntime", None),
}
# extra -> the extras it includes (pyproject: train pulls in firstspike[torch])
INCLUDES = {"torch": {"torch"}, "train": {"train", "torch"}}


def missing_package(error: ImportError) -> str | None:
    """The optional top-level module whose absence raised ``error``; None for any other
    ImportError (a broken install or a bug, which should not be dressed up as a missing extra)."""
    if not isinstance(error, ModuleNotFoundError) or not error.name:
        return None
    module = error.name.split(".")[0]
    return module if module in PACKAGES else None


def install_hint(module: str, extra: str | None = None) -> str:
    """``PyTorch: pip install 'firstspike[train]'``: what ``module`` is and how to get it, through
    ``extra`` when that extra brings it (a command names the extra it needs as a whole), else
    through the module's own extra."""
    title, own = PACKAGES[module]
    chosen = extra if extra is not None and own in INCLUDES.get(extra, ()) else own
    target = "firstspike" if chosen is None else f"'firstspike[{chosen}]'"
    return f"{title}: pip install {target}"


def needs(what: str, error: ImportError, extra: str | None = None) -> str | None:
    """``<what> needs PyTorch: pip install 'firstspike[torch]'`` when ``error`` is a missing
    optional dependency, else None."""
    module = missing_package(error)
    return None if module is None else f"{what} needs {install_hint(module, extra)}"
