"""firstspike training: latency-coded spiking networks (Lu, Ding, Yu), their data, training,
evaluation, energy accounting and export to the model store.

Importing this package imports nothing heavy: the service's onnx runtime reads manifests
through ``training.contract.manifest`` in environments without torch.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    # pyproject.toml is the one place the version is written; this reads the installed copy.
    __version__ = version("firstspike")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"
del PackageNotFoundError, version
