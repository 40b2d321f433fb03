"""Running the app with uvicorn, in one process or in ``workers`` processes on one port.

SIGTERM is graceful: readiness turns 503 at once and new work is refused (``draining``); after
``drain_delay_s`` (time for load balancers to notice) uvicorn stops accepting connections and
gives requests in flight ``shutdown_grace_s`` to finish. With several workers the parent passes
SIGTERM on to every worker, and each drains like that. The HTTP protocol gets the connection
timeouts uvicorn lacks (``service.http.timeouts``), in every worker too.

With several workers, each is a separate process (spawned, not forked) that builds its own app
with ``service.app:create_app`` from ``FIRSTSPIKE_*`` variables the parent sets from its
settings: its own models, batchers and limits. Their metrics meet in a directory the parent
creates afresh for every start and removes on exit (``PROMETHEUS_MULTIPROC_DIR``, see
``service.metrics``); when a worker dies, the parent drops its live gauges.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import tempfile
import threading

import uvicorn
import uvicorn.supervisors.multiprocess as supervision
from fastapi import FastAPI

from service.http.timeouts import protocol_for
from service.settings import Settings

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's variable (service.metrics)
METRICS_DIR_PREFIX = "firstspike-metrics-"
OWNER = "owner"  # in the metrics directory: who made it (prometheus_client reads only *.db files)
WS_MAX_QUEUE = 4  # WebSocket messages uvicorn buffers for a connection before it stops reading


class DrainingServer(uvicorn.Server):
    """uvicorn's server with the drain above. ``service`` is the app's state; a worker, whose app
    is built by the factory after the process starts, finds it in the loaded app."""

    def __init__(self, config: uvicorn.Config, service=None) -> None:
        super().__init__(config)
        self.service = service

    def _find_service(self):
        if self.service is None and self.config.loaded:
            app = self.config.loaded_app
            while app is not None and not isinstance(app, FastAPI):
                app = getattr(app, "app", None)  # uvicorn's own middleware wraps the app
            self.service = None if app is None else app.state.service
        return self.service

    def handle_exit(self, sig, frame) -> None:
        service = self._find_service()
        if service is None:  # not started yet: nothing to drain
            super().handle_exit(sig, frame)
            return
        delay = service.settings.drain_delay_s
        if service.draining or delay <= 0:
            service.draining = True
            super().handle_exit(sig, frame)  # a second signal stops at once
            return
        service.draining = True
        timer = threading.Timer(delay, super().handle_exit, args=(sig, frame))
        timer.daemon = True
        timer.start()


class _DrainingWorker(supervision.Process):
    """One of uvicorn's worker processes, running ``DrainingServer`` instead of ``uvicorn.Server``."""

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = DrainingServer(self.config)
        return self._server


class WorkerSupervisor(supervision.Multiprocess):
    """uvicorn's supervisor (it restarts a worker that dies; SIGHUP replaces every worker one at a
    time; SIGTERM and SIGINT stop them all), whose workers drain, and which tells prometheus_client
    about every worker that is gone so that its live gauges (in-flight requests, open streams,
    model info) stop counting. Counters and histograms of a gone worker stay in the totals, so
    they never go down."""

    def __init__(self, config: uvicorn.Config, sockets: list, metrics_dir: str) -> None:
        super().__init__(config, sockets)
        self.metrics_dir = metrics_dir

    def run(self) -> None:
        # uvicorn builds its workers from its module's Process class, with no hook to choose
        # another: swap ours in while this supervisor runs (the parent process does nothing else).
        original, supervision.Process = supervision.Process, _DrainingWorker
        try:
            super().run()
        finally:
            supervision.Process = original

    def keep_subprocess_alive(self) -> None:
        self._forget_gone_workers(super().keep_subprocess_alive)

    def restart_all(self) -> None:
        self._forget_gone_workers(super().restart_all)

    def handle_ttou(self) -> None:
        self._forget_gone_workers(super().handle_ttou)

    def _forget_gone_workers(self, step) -> None:
        from prometheus_client.multiprocess import mark_process_dead

        before = {process.pid for process in self.processes}
        step()
        for pid in before - {process.pid for process in self.processes}:
            mark_process_dead(pid, self.metrics_dir)


def serve(settings: Settings, host: str, port: int, log_level: str = "info") -> None:
    if settings.workers > 1:
        _serve_workers(settings, host, port, log_level)
        return
    # One process keeps its metrics in memory, per app: never in a multiprocess directory (a
    # stale one would add old counts), whatever the environment says. prometheus_client reads
    # the variable when it is first imported, which is below.
    os.environ.pop(MULTIPROCESS_DIR, None)
    from service.app import create_app

    app = create_app(settings)
    protocol = protocol_for(settings, app.state.service.metrics.rejections)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        http=protocol,
        timeout_graceful_shutdown=settings.shutdown_grace_s,
        **websocket_limits(settings),
    )
    DrainingServer(config, app.state.service).run()


def websocket_limits(settings: Settings) -> dict:
    """uvicorn's WebSocket limits, which apply before the app sees a message (its defaults: 16 MiB
    messages, 32 queued): one message no larger than a stream packet may be, and few buffered."""
    return {"ws_max_size": settings.stream_max_message_bytes, "ws_max_queue": WS_MAX_QUEUE}


def _serve_workers(settings: Settings, host: str, port: int, log_level: str) -> None:
    # A protocol class made at run time does not pickle into a spawned worker: each worker
    # imports its own by name, built from the settings it inherits (service.http.worker).
    config = uvicorn.Config(
        "service.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=settings.workers,
        log_level=log_level,
        access_log=False,
        http="service.http.worker:Protocol",
        timeout_graceful_shutdown=settings.shutdown_grace_s,
        **websocket_limits(settings),
    )
    sock = config.bind_socket()  # by the parent, shared by the workers
    remove_stale_metrics_dirs()
    metrics_dir = tempfile.mkdtemp(prefix=METRICS_DIR_PREFIX)
    with open(os.path.join(metrics_dir, OWNER), "w") as owner:
        owner.write(_owner())
    # Spawned workers inherit the environment: their settings and the metrics directory.
    with _environment({**settings.to_environment(), MULTIPROCESS_DIR: metrics_dir}):
        try:
            WorkerSupervisor(config, [sock], metrics_dir).run()
        finally:
            sock.close()
            shutil.rmtree(metrics_dir, ignore_errors=True)


def remove_stale_metrics_dirs() -> None:
    """Metrics directories left by a server that did not exit cleanly: its parent process is gone.
    A new start never reads them (it makes its own); this only frees the space. A directory is
    judged only from the PID namespace that made it (a shared /tmp may hold another container's)."""
    for path in glob.glob(os.path.join(tempfile.gettempdir(), f"{METRICS_DIR_PREFIX}*")):
        try:
            with open(os.path.join(path, OWNER)) as owner:
                namespace, pid = owner.read().rsplit(" ", 1)
        except (OSError, ValueError):
            continue
        if namespace == _owner().rsplit(" ", 1)[0] and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _owner() -> str:
    """``<pid namespace> <pid>`` of this process."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = "unknown"
    return f"{namespace} {os.getpid()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's
        return True
    return True


@contextlib.contextmanager
def _environment(values: dict[str, str | None]):
    saved = {name: os.environ.get(name) for name in values}
    _set_environment(values)
    try:
        yield
    finally:
        _set_environment(saved)


def _set_environment(values: dict[str, str | None]) -> None:
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
