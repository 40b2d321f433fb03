"""Reading and verifying model-store versions. Standard library only: no torch, no numpy."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

MANIFEST = "manifest.json"
WEIGHTS = "weights.safetensors"
MANIFEST_FORMAT = "firstspike-model/1"
NAME_REGEX = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
NAME_PATTERN = re.compile(NAME_REGEX)
REQUIRED_KEYS = ("format", "name", "version", "kind", "architecture", "timesteps", "neuron", "input", "labels",
                 "layers", "energy", "evaluation", "files")


class ModelStoreError(Exception):
    """A model version that is missing, malformed or whose files do not match the manifest."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_valid_name(name: str) -> bool:
    """Model names are single path components: no separators, never ``.`` or ``..`` (the first
    character is a letter or digit)."""
    return bool(NAME_PATTERN.match(name))


def list_versions(model_dir: Path) -> list[int]:
    """Positive integer version folders, ascending."""
    try:
        if not model_dir.is_dir():
            return []
        return sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit() and int(p.name) > 0)
    except OSError as error:
        raise ModelStoreError(f"{model_dir}: cannot be listed ({error.strerror or error})") from None


def discover(store_root: Path) -> dict[str, list[int]]:
    """Every model name in the store with its versions."""
    store_root = Path(store_root)
    if not store_root.is_dir():
        raise ModelStoreError(f"model store {store_root} is not a directory")
    found = {}
    try:
        folders = sorted(store_root.iterdir())
    except OSError as error:
        raise ModelStoreError(f"model store {store_root} cannot be listed ({error.strerror or error})") from None
    for model_dir in folders:
        if model_dir.is_dir() and is_valid_name(model_dir.name):
            versions = list_versions(model_dir)
            if versions:
                found[model_dir.name] = versions
    return found


def resolve_version_dir(path: Path) -> Path:
    """Accept a version folder (``store/digits/1``) or a model folder (``store/digits``: its
    highest version)."""
    path = Path(path)
    if (path / MANIFEST).exists():
        return path
    versions = list_versions(path)
    if versions:
        return path / str(versions[-1])
    raise ModelStoreError(f"{path} is neither a model version (no {MANIFEST}) nor a model folder with versions")


def read_manifest(version_dir: Path, verify: bool = True) -> dict:
    """Parse ``manifest.json`` and check every listed file's size and sha256."""
    version_dir = Path(version_dir)
    manifest_path = version_dir / MANIFEST
    if not manifest_path.is_file():
        raise ModelStoreError(f"{version_dir}: no {MANIFEST}")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        raise ModelStoreError(f"{manifest_path}: not valid JSON ({error})") from None
    except OSError as error:
        raise ModelStoreError(f"{manifest_path}: cannot be read ({error.strerror or error})") from None
    if not isinstance(manifest, dict):
        raise ModelStoreError(f"{manifest_path}: must hold a JSON object")
    missing = [key for key in REQUIRED_KEYS if key not in manifest]
    if missing:
        raise ModelStoreError(f"{manifest_path}: missing keys {', '.join(missing)}")
    if manifest["format"] != MANIFEST_FORMAT:
        raise ModelStoreError(f"{manifest_path}: format {manifest['format']!r}, expected {MANIFEST_FORMAT!r}")
    _check_files_entry(manifest_path, manifest)
    if verify:
        verify_files(version_dir, manifest)
    return manifest


def named_files(manifest: dict) -> list[str]:
    """Every file the manifest has a reader open: the weights and each ONNX graph."""
    graphs = manifest.get("onnx") or {}
    return [WEIGHTS, *(graph["file"] for graph in graphs.values() if isinstance(graph, dict) and "file" in graph)]


def _check_files_entry(manifest_path: Path, manifest: dict) -> None:
    """``files`` maps each file to its ``sha256`` (64 hex digits) and ``bytes``, and lists every
    file the manifest names elsewhere, so that none is opened unhashed or from outside the folder."""
    files = manifest["files"]
    if not isinstance(files, dict):
        raise ModelStoreError(f"{manifest_path}: 'files' must map file names to their sha256 and bytes")
    for relative, expected in files.items():
        if not (isinstance(expected, dict) and isinstance(expected.get("sha256"), str)
                and re.fullmatch(r"[0-9a-f]{64}", expected["sha256"])
                and type(expected.get("bytes")) is int and expected["bytes"] >= 0):
            raise ModelStoreError(f"{manifest_path}: files[{relative!r}] must be "
                                  '{"sha256": <64 hex digits>, "bytes": <size>}')
    graphs = manifest.get("onnx")
    if graphs is not None and not (isinstance(graphs, dict) and all(
            not isinstance(graph, dict) or isinstance(graph.get("file"), str) for graph in graphs.values())):
        raise ModelStoreError(f"{manifest_path}: 'onnx' must map graph roles to {{\"file\": <name>, ...}}")
    for relative in named_files(manifest):
        if relative not in files:
            raise ModelStoreError(f"{manifest_path}: {relative} is used but not listed in 'files' (with its sha256)")


def verify_files(version_dir: Path, manifest: dict) -> None:
    for relative, expected in manifest["files"].items():
        path = (version_dir / relative).resolve()
        if version_dir.resolve() not in path.parents:
            raise ModelStoreError(f"{version_dir}: manifest lists {relative!r} outside the version folder")
        if not path.is_file():
            raise ModelStoreError(f"{version_dir}: {relative} is listed in the manifest but missing")
        try:
            size = path.stat().st_size
            digest = sha256_file(path) if size == expected["bytes"] else ""
        except OSError as error:
            raise ModelStoreError(f"{version_dir}: {relative} cannot be read ({error.strerror or error})") from None
        if size != expected["bytes"]:
            raise ModelStoreError(f"{version_dir}: {relative} has {size} bytes, manifest says {expected['bytes']}")
        if digest != expected["sha256"]:
            raise ModelStoreError(
                f"{version_dir}: {relative} does not match its sha256 (manifest {expected['sha256'][:12]}..., "
                f"file {digest[:12]}...); refusing to load a modified or corrupted model"
            )
