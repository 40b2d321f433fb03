"""Benchmarks: scripts that print figures, run by hand (never timed assertions in tests).

- ``python -m benchmarks.early_exit``: /classify latency and throughput, early exit on
  vs off, one server.
- ``python -m benchmarks.comparison``: runtimes, batching, ANN and a naive baseline on
  the shipped digits and fashion-mnist models.
"""
