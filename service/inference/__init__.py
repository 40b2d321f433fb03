"""The inference core, free of HTTP: loaded models (``registry``), runtimes that step one
timestep at a time, the early-exit loop and the batcher above them, admission (slots, draining,
timeouts), event-stream sessions and their framing. Refusals are domain errors (``errors``);
``service.http`` turns them into status codes."""
