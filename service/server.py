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
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import TYPE_CHECKING, TypedDict

import uvicorn
import uvicorn.supervisors.multiprocess as supervision
from fastapi import FastAPI

from service.http.timeouts import protocol_for
from service.settings import Settings

if TYPE_CHECKING:  # at run time it would import prometheus_client too early (see serve)
    from service.inference.state import ServiceState

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's variable (service.metrics)
METRICS_DIR_PREFIX = "firstspike-metrics-"
OWNER = "owner"  # in the metrics directory: who made it (prometheus_client reads only *.db files)
WS_MAX_QUEUE = 4  # WebSocket messages uvicorn buffers for a connection before it stops reading


class DrainingServer(uvicorn.Server):
    """uvicorn's server with the drain above. ``service`` is the app's state; a worker, whose app
    is built by the factory after the process starts, finds it in the loaded app."""

    def __init__(self, config: uvicorn.Config, service: ServiceState | None = None) -> None:
        """A server for ``config``.

        Args:
            config: uvicorn's configuration.
            service: the app's state, where the app is already built.
        """
        super().__init__(config)
        self.service = service

    def _find_service(self) -> ServiceState | None:
        """The app's state, once there is an app."""
        if self.service is None and self.config.loaded:
            app = self.config.loaded_app
            while app is not None and not isinstance(app, FastAPI):
                app = getattr(app, "app", None)  # uvicorn's own middleware wraps the app
            self.service = None if app is None else app.state.service
        return self.service

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Start draining on SIGTERM or SIGINT, and stop after ``drain_delay_s``; a second
        signal stops at once.

        Args:
            sig: the signal.
            frame: the interrupted frame.
        """
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

    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket], metrics_dir: str) -> None:
        """A supervisor of ``config.workers`` workers.

        Args:
            config: uvicorn's configuration, with the app as an import string.
            sockets: the listening sockets the workers share.
            metrics_dir: the multiprocess metrics directory.
        """
        super().__init__(config, sockets)
        self.metrics_dir = metrics_dir

    def run(self) -> None:
        """uvicorn's supervisor loop, its workers ``_DrainingWorker``."""
        # uvicorn builds its workers from its module's Process class, with no hook to choose
        # another: swap ours in while this supervisor runs (the parent process does nothing else).
        # mypy refuses assignments to a class name, hence the ignores.
        original, supervision.Process = supervision.Process, _DrainingWorker  # type: ignore[misc]
        try:
            super().run()
        finally:
            supervision.Process = original  # type: ignore[misc]

    def keep_subprocess_alive(self) -> None:
        """uvicorn's restart of dead workers, then their live gauges dropped."""
        self._forget_gone_workers(super().keep_subprocess_alive)

    def restart_all(self) -> None:
        """uvicorn's replacement of every worker (SIGHUP), then the old ones' live gauges dropped."""
        self._forget_gone_workers(super().restart_all)

    def handle_ttou(self) -> None:
        """uvicorn's removal of one worker (SIGTTOU), then its live gauges dropped."""
        self._forget_gone_workers(super().handle_ttou)

    def _forget_gone_workers(self, step: Callable[[], None]) -> None:
        """Run uvicorn's ``step``, then mark every worker it ended as dead for prometheus_client."""
        from prometheus_client.multiprocess import mark_process_dead

        before = {process.pid for process in self.processes}
        step()
        for pid in before - {process.pid for process in self.processes}:
            mark_process_dead(pid, self.metrics_dir)  # type: ignore[no-untyped-call]  # prometheus_client: untyped


def serve(settings: Settings, host: str, port: int, log_level: str = "info") -> None:
    """Serve until stopped: one process, or ``settings.workers`` worker processes.

    Args:
        settings: the service's settings.
        host: the address to listen on.
        port: the port.
        log_level: uvicorn's log level.
    """
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
        # uvicorn annotates an int, but any number of seconds works (asyncio.timeout takes it)
        timeout_graceful_shutdown=settings.shutdown_grace_s,  # type: ignore[arg-type]
        **websocket_limits(settings),
    )
    DrainingServer(config, app.state.service).run()


class WebSocketLimits(TypedDict):
    """uvicorn.Config's WebSocket options."""

    ws_max_size: int
    ws_max_queue: int


def websocket_limits(settings: Settings) -> WebSocketLimits:
    """uvicorn's WebSocket limits, which apply before the app sees a message (its defaults: 16 MiB
    messages, 32 queued): one message no larger than a stream packet may be, and few buffered.

    Args:
        settings: the service's settings (``stream_max_message_bytes``).

    Returns:
        The keyword arguments for ``uvicorn.Config``.
    """
    return {"ws_max_size": settings.stream_max_message_bytes, "ws_max_queue": WS_MAX_QUEUE}


def _serve_workers(settings: Settings, host: str, port: int, log_level: str) -> None:
    """Serve with ``settings.workers`` spawned workers, their metrics in a fresh directory."""
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
        timeout_graceful_shutdown=settings.shutdown_grace_s,  # type: ignore[arg-type]  # as above
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
    """Whether process ``pid`` exists (in this PID namespace)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's
        return True
    return True


@contextlib.contextmanager
def _environment(values: dict[str, str | None]) -> Iterator[None]:
    """``values`` in ``os.environ`` for the block (None: unset), then the variables as they were."""
    saved = {name: os.environ.get(name) for name in values}
    _set_environment(values)
    try:
        yield
    finally:
        _set_environment(saved)


def _set_environment(values: dict[str, str | None]) -> None:
    """Set each variable, or unset it where the value is None."""
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
