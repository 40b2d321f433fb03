"""The Open Inference Protocol (KServe v2 / Triton) over REST: wire format and tensors."""
