"""Prometheus metrics (DESIGN.md names, base units). Each app owns its own registry, so two apps
in one process never share counters.

With several server processes (``firstspike serve --workers N``) the parent points
``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before any worker imports prometheus_client;
each worker's values then live in per-process files there, and ``/metrics`` in any worker
exposes all of them merged (prometheus_client multiprocess mode): counters and histograms are
summed over the workers, gauges are merged as their ``multiprocess_mode`` says."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SPIKE_BUCKETS = tuple(m * 10**e for e in range(1, 8) for m in (1, 3))
SYNAPTIC_OP_BUCKETS = tuple(m * 10**e for e in range(3, 11) for m in (1, 3))
ENERGY_BUCKETS = tuple(m * 10.0**e for e in range(-9, -1) for m in (1, 3))
MODEL = ("model", "version")


class Metrics:
    """The service's metrics, and the registry that ``/metrics`` exposes."""

    def __init__(self, max_timesteps: int = 16) -> None:
        """Make every metric, in this app's own registry (or, in multiprocess mode, in none).

        Args:
            max_timesteps: the largest bucket of ``firstspike_decision_timestep``.
        """
        # ``registry`` is what /metrics exposes. In one process it holds the metrics themselves; in
        # multiprocess mode it reads every worker's files instead, and the metrics are registered
        # nowhere (their values go to this process's files whichever Metrics object records them).
        directory = os.environ.get(MULTIPROCESS_DIR)
        self.multiprocess = bool(directory)
        self.registry = CollectorRegistry()
        r = None if self.multiprocess else self.registry
        if directory:
            self.registry.register(_Aggregated(directory))
        self.requests = Counter(
            "firstspike_requests_total",
            "HTTP requests by endpoint and status",
            ["endpoint", "status", *MODEL],
            registry=r,
        )
        self.request_duration = Histogram(
            "firstspike_request_duration_seconds",
            "Time to answer a request",
            ["endpoint", *MODEL],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.decision_timestep = Histogram(
            "firstspike_decision_timestep",
            "Timestep (1-based) at which a request was decided",
            [*MODEL, "endpoint"],
            buckets=tuple(float(t) for t in range(1, max_timesteps + 1)),
            registry=r,
        )
        self.decision_latency = Histogram(
            "firstspike_decision_latency_seconds",
            "Wall time from input received to decision",
            [*MODEL, "endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.exits = Counter(
            "firstspike_exits_total", "Decisions by exit reason", [*MODEL, "endpoint", "reason"], registry=r
        )
        self.spikes = Histogram(
            "firstspike_spikes_per_request",
            "Spikes emitted per request (all layers)",
            [*MODEL, "endpoint"],
            buckets=SPIKE_BUCKETS,
            registry=r,
        )
        self.synaptic_ops = Histogram(
            "firstspike_synaptic_ops_per_request",
            "Synaptic operations per request",
            [*MODEL, "endpoint"],
            buckets=SYNAPTIC_OP_BUCKETS,
            registry=r,
        )
        self.energy = Histogram(
            "firstspike_energy_joules",
            "Estimated energy per request, eqs (15)-(16)",
            [*MODEL, "endpoint"],
            buckets=ENERGY_BUCKETS,
            registry=r,
        )
        self.rejections = Counter(
            "firstspike_rejections_total",
            "Requests shed before inference",
            [*MODEL, "endpoint", "reason"],
            registry=r,
        )
        # Multiprocess modes (ignored in one process). In-flight requests and open streams are
        # work happening now in some worker: the server's figure is the sum over the live workers
        # ("livesum"; a dead worker's files are dropped when the parent marks it dead, so work it
        # never finished is not counted for ever).
        self.inflight = Gauge(
            "firstspike_inflight_requests",
            "Requests being classified now",
            ["endpoint"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.stream_sessions = Gauge(
            "firstspike_stream_sessions_active",
            "Event streams being classified now",
            list(MODEL),
            registry=r,
            multiprocess_mode="livesum",
        )
        self.stream_events = Counter(
            "firstspike_stream_events_total", "Events received on streams", list(MODEL), registry=r
        )
        self.batch_size = Histogram(
            "firstspike_batch_size",
            "Rows in each runtime timestep",
            list(MODEL),
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=r,
        )
        # Every worker loads the same versions, so summing would say 2 with two workers and "all"
        # would add a pid label: "livemax" gives 1 while at least one live worker serves the
        # version, without a pid label, as in one process.
        self.model_info = Gauge(
            "firstspike_model_info",
            "Loaded model versions (value 1)",
            [*MODEL, "runtime", "timesteps"],
            registry=r,
            multiprocess_mode="livemax",
        )

    def announce_model(self, labels: tuple[str, ...], serving: bool) -> None:
        """``firstspike_model_info`` = 1 for a version being served; gone when it no longer is.
        prometheus_client cannot remove a series in multiprocess mode, so there the worker sets it
        to 0 and the exposition leaves out versions that no live worker serves.

        Args:
            labels: (model, version, runtime, timesteps).
            serving: whether the version is served from now on.
        """
        if serving:
            self.model_info.labels(*labels).set(1)
        elif self.multiprocess:
            self.model_info.labels(*labels).set(0)
        else:
            self.model_info.remove(*labels)


class _Aggregated:
    """Every worker's metrics, merged (prometheus_client's MultiProcessCollector), less the
    ``firstspike_model_info`` series at 0 (versions unloaded everywhere, see ``announce_model``)."""

    def __init__(self, directory: str) -> None:
        # prometheus_client leaves MultiProcessCollector unannotated
        self.collector = MultiProcessCollector(None, directory)  # type: ignore[no-untyped-call]

    def collect(self) -> Iterator[Metric]:
        """Every worker's metrics, as prometheus_client's ``Collector`` protocol asks."""
        metrics: Iterable[Metric] = self.collector.collect()  # type: ignore[no-untyped-call]
        for metric in metrics:
            if metric.name == "firstspike_model_info":
                metric.samples = [sample for sample in metric.samples if sample.value != 0]
            yield metric
