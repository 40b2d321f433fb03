"""firstspike training: latency-coded spiking networks (Lu, Ding, Yu), their data, training,
evaluation, energy accounting and export to the model store.

Importing this package imports nothing heavy: the service's onnx runtime reads manifests
through ``training.store.manifest`` in environments without torch.
"""
