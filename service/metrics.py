"""Prometheus metrics (DESIGN.md names, base units). Each app owns its own registry, so two apps
in one process never share counters."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SPIKE_BUCKETS = tuple(m * 10**e for e in range(1, 8) for m in (1, 3))
SYNAPTIC_OP_BUCKETS = tuple(m * 10**e for e in range(3, 11) for m in (1, 3))
ENERGY_BUCKETS = tuple(m * 10.0**e for e in range(-9, -1) for m in (1, 3))
MODEL = ("model", "version")


class Metrics:
    def __init__(self, max_timesteps: int = 16) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("firstspike_requests_total", "HTTP requests by endpoint and status",
                                ["endpoint", "status", *MODEL], registry=r)
        self.request_duration = Histogram("firstspike_request_duration_seconds", "Time to answer a request",
                                          ["endpoint", *MODEL], buckets=LATENCY_BUCKETS, registry=r)
        self.decision_timestep = Histogram(
            "firstspike_decision_timestep", "Timestep (1-based) at which a request was decided",
            [*MODEL, "endpoint"], buckets=tuple(float(t) for t in range(1, max_timesteps + 1)), registry=r)
        self.decision_latency = Histogram("firstspike_decision_latency_seconds",
                                          "Wall time from input received to decision", [*MODEL, "endpoint"],
                                          buckets=LATENCY_BUCKETS, registry=r)
        self.exits = Counter("firstspike_exits_total", "Decisions by exit reason", [*MODEL, "endpoint", "reason"],
                             registry=r)
        self.spikes = Histogram("firstspike_spikes_per_request", "Spikes emitted per request (all layers)",
                                [*MODEL, "endpoint"], buckets=SPIKE_BUCKETS, registry=r)
        self.synaptic_ops = Histogram("firstspike_synaptic_ops_per_request", "Synaptic operations per request",
                                      [*MODEL, "endpoint"], buckets=SYNAPTIC_OP_BUCKETS, registry=r)
        self.energy = Histogram("firstspike_energy_joules", "Estimated energy per request, eqs (15)-(16)",
                                [*MODEL, "endpoint"], buckets=ENERGY_BUCKETS, registry=r)
        self.rejections = Counter("firstspike_rejections_total", "Requests shed before inference",
                                  [*MODEL, "endpoint", "reason"], registry=r)
        self.inflight = Gauge("firstspike_inflight_requests", "Requests being classified now", ["endpoint"],
                              registry=r)
        self.stream_sessions = Gauge("firstspike_stream_sessions_active", "Event streams being classified now",
                                     list(MODEL), registry=r)
        self.stream_events = Counter("firstspike_stream_events_total", "Events received on streams", list(MODEL),
                                     registry=r)
        self.batch_size = Histogram("firstspike_batch_size", "Rows in each runtime timestep", list(MODEL),
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256), registry=r)
        self.model_info = Gauge("firstspike_model_info", "Loaded model versions (value 1)",
                                [*MODEL, "runtime", "timesteps"], registry=r)
