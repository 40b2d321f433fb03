"""The model store: ``<root>/<name>/<version>/{manifest.json, weights.safetensors, ...}``.

``training.contract.manifest`` reads and verifies without torch (the onnx serving image has
none); ``export`` writes versions, ``load`` rebuilds torch networks from them and ``source``
finds the network to export or calibrate in a training run or a stored version.
"""
