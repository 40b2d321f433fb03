"""Running the app with uvicorn, with a graceful SIGTERM: readiness turns 503 at once and new
work is refused (``draining``); after ``drain_delay_s`` (time for load balancers to notice) uvicorn
stops accepting connections and gives requests in flight ``shutdown_grace_s`` to finish. Its HTTP
protocol gets the connection timeouts uvicorn lacks (``service.http_timeouts``)."""

from __future__ import annotations

import threading

import uvicorn

from service.app import create_app
from service.http_timeouts import default_base, timed_protocol
from service.settings import Settings


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, service, drain_delay_s: float) -> None:
        super().__init__(config)
        self.service = service
        self.drain_delay_s = drain_delay_s

    def handle_exit(self, sig, frame) -> None:
        if self.service.draining or self.drain_delay_s <= 0:
            self.service.draining = True
            super().handle_exit(sig, frame)  # a second signal stops at once
            return
        self.service.draining = True
        timer = threading.Timer(self.drain_delay_s, super().handle_exit, args=(sig, frame))
        timer.daemon = True
        timer.start()


def serve(settings: Settings, host: str, port: int, log_level: str = "info") -> None:
    app = create_app(settings)
    rejected = app.state.service.metrics.rejections
    # After an early answer, the rest of a body is dropped for at most body_timeout_s; a stream
    # upload answers at its decision by design, and a live sensor may go on sending for as long
    # as a stream may last (event time runs at wall-clock speed there).
    stream_tail = settings.stream_max_duration_s + settings.stream_idle_timeout_s
    protocol = timed_protocol(default_base(), settings.header_timeout_s, discard_timeout_s=settings.body_timeout_s,
                              discard_timeouts={"/classify/stream": max(stream_tail, settings.body_timeout_s)},
                              on_header_timeout=rejected.labels("", "", "unmatched", "header_timeout").inc)
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False, http=protocol,
                            timeout_graceful_shutdown=settings.shutdown_grace_s)
    DrainingServer(config, app.state.service, settings.drain_delay_s).run()
