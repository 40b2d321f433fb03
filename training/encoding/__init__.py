"""Input encoders: turn a static image into what the network sees at each timestep."""

from training.encoding.direct import DirectCurrentEncoder
from training.encoding.frames import EventFrameEncoder
from training.encoding.intensity import IntensityLatencyEncoder
from training.encoding.latency import (
    LatencyEncoder,
    latency_encode,
    latency_spikes_at,
    spike_times,
)
from training.encoding.stem import FeatureStem

__all__ = [
    "DirectCurrentEncoder",
    "EventFrameEncoder",
    "FeatureStem",
    "IntensityLatencyEncoder",
    "LatencyEncoder",
    "latency_encode",
    "latency_spikes_at",
    "spike_times",
]
