"""The model store: ``<root>/<name>/<version>/{manifest.json, weights.safetensors, ...}``.

``manifest`` reads and verifies without torch (the onnx serving image has none); ``export``
writes versions and ``load`` rebuilds torch networks from them.
"""
