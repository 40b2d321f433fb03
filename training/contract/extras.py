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
    """The optional top-level module whose absence raised ``error``.

    Args:
        error: an import error that was caught.

    Returns:
        The module's top-level name (a key of ``PACKAGES``); None for any other ImportError (a
        broken install or a bug, which should not be dressed up as a missing extra).
    """
    if not isinstance(error, ModuleNotFoundError) or not error.name:
        return None
    module = error.name.split(".")[0]
    return module if module in PACKAGES else None


def install_hint(module: str, extra: str | None = None) -> str:
    """What ``module`` is and how to install it: ``PyTorch: pip install 'firstspike[train]'``.

    Args:
        module: a key of ``PACKAGES``.
        extra: the extra a command needs as a whole; named when it brings ``module``, else
            the module's own extra is.

    Returns:
        The one-line hint.
    """
    title, own = PACKAGES[module]
    chosen = extra if extra is not None and own in INCLUDES.get(extra, ()) else own
    target = "firstspike" if chosen is None else f"'firstspike[{chosen}]'"
    return f"{title}: pip install {target}"


def needs(what: str, error: ImportError, extra: str | None = None) -> str | None:
    """The message for an optional dependency that is missing.

    Args:
        what: what needs it (a command, a runtime).
        error: an import error that was caught.
        extra: the extra ``what`` needs as a whole (see ``install_hint``).

    Returns:
        ``<what> needs PyTorch: pip install 'firstspike[torch]'`` when ``error`` is a missing
        optional dependency, else None.
    """
    module = missing_package(error)
    return None if module is None else f"{what} needs {install_hint(module, extra)}"
