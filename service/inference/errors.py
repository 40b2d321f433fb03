"""What the inference core refuses, as domain errors: no status codes here.

``service.http.errors`` maps each class to its HTTP status in one table (the WebSocket route to
a close code); ``code`` is the slug clients see in the error body.
"""

from __future__ import annotations


class InferenceError(Exception):
    """A request that the inference core refuses, with a stable ``code`` and a message for people."""

    code = "bad_request"

    def __init__(self, message: str, code: str | None = None) -> None:
        """A refusal.

        Args:
            message: what is wrong, for people.
            code: the slug for programs, if not the class's own.
        """
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class InvalidInput(InferenceError):
    """The input cannot be classified as sent (a malformed stream, a wrong model kind, a bad name)."""


class InputTooLarge(InferenceError):
    """The input is larger than the service's limits."""

    code = "payload_too_large"


class ModelNotFound(InferenceError):
    """No such model, or no such version of it, is loaded."""

    code = "unknown_model"


class VersionRefused(InferenceError):
    """A reload found a version that cannot serve; the versions served before stay."""

    code = "version_refused"


class Unavailable(InferenceError):
    """Refused for now, not for what was sent: retrying later (or elsewhere) can succeed."""


class NotReady(Unavailable):
    """The default models are still loading."""

    code = "not_ready"


class Draining(Unavailable):
    """The server is shutting down and takes no new work."""

    code = "draining"


class Overloaded(Unavailable):
    """Every slot (requests, streams, a batcher's queue) is taken."""

    code = "overloaded"


class TimedOut(InferenceError):
    """No decision within the request timeout; the work has been stopped."""

    code = "timeout"


class StreamTimedOut(InferenceError):
    """A stream that went silent past its idle timeout, or outlived its wall-clock cap."""

    code = "stream_timeout"


class WrongModelKind(InvalidInput):
    """An image sent to an event model, or an event stream to an image model."""

    code = "wrong_model_kind"
