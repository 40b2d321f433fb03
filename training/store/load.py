"""Rebuilding a torch network from a verified model-store version."""

from __future__ import annotations

from pathlib import Path

from safetensors.torch import load_file

from training.contract.manifest import WEIGHTS, Manifest, ModelStoreError, read_manifest, resolve_version_dir
from training.network.network import SpikingNetwork
from training.network.spec import NetworkSpec


def load_network(path: str | Path) -> tuple[SpikingNetwork, Manifest]:
    """The network and manifest of a stored version, verified.

    Args:
        path: a version folder, or a model folder (its highest version).

    Returns:
        The network, in eval mode, and its manifest.

    Raises:
        ModelStoreError: no version there, or one that does not verify or rebuild.
    """
    version_dir = resolve_version_dir(Path(path))
    manifest = read_manifest(version_dir)
    return network_from_manifest(version_dir, manifest), manifest


def network_from_manifest(version_dir: Path, manifest: Manifest) -> SpikingNetwork:
    """The network of an already verified version.

    Args:
        version_dir: the version folder.
        manifest: its manifest, already read and verified.

    Returns:
        The network, in eval mode, with the stored weights.

    Raises:
        ModelStoreError: no ``network`` in the manifest, or weights that cannot be read or do
            not fit it.
    """
    if manifest.network is None:
        raise ModelStoreError(f"{version_dir}: the manifest has no 'network' to rebuild the network from")
    try:
        weights = load_file(str(version_dir / WEIGHTS))
    except Exception as error:  # noqa: BLE001 - safetensors' own SafetensorError among them
        raise ModelStoreError(f"{version_dir / WEIGHTS}: cannot be read as safetensors ({error})") from None
    try:
        network = SpikingNetwork(NetworkSpec.from_dict(manifest.network))
        network.load_state_dict(weights)
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise ModelStoreError(f"{version_dir}: weights do not fit the manifest's network ({error})") from None
    return network.eval()
