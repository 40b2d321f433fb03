"""The HTTP protocol of one worker of ``firstspike serve --workers N``, imported by name in each
spawned worker (uvicorn's ``http="service.http.worker:Protocol"``): the same connection
timeouts as a single process, from the ``FIRSTSPIKE_*`` settings the worker inherits. Header
timeouts happen before any app sees the request; they are counted through the multiprocess
metrics directory the worker also inherits, so ``/metrics`` sums them over the workers."""

from service.http.timeouts import protocol_for
from service.metrics import Metrics
from service.settings import Settings

Protocol = protocol_for(Settings(), Metrics().rejections)
