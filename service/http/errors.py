"""The one error shape of the API, and the one place where errors become status codes.

Every non-2xx answer is ``{"error": "<message>", "code": "<slug>", "request_id": "..."}``. The
inference core raises domain errors (``service.inference.errors``) and the image decoder its
``ImageRejected``; ``STATUS`` maps each to its status here, and the WebSocket route to a close
code through ``status_of``. HTTP-only refusals (a wrong content type, a malformed body) raise
``ApiError`` with their status directly.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from service.http.schemas import ErrorBody
from service.inference.errors import (
    InferenceError,
    InputTooLarge,
    InvalidInput,
    ModelNotFound,
    StreamTimedOut,
    TimedOut,
    Unavailable,
    VersionRefused,
)
from training.contract.images.decode import ImageRejected, ImageTooLarge

log = logging.getLogger("firstspike.service")

# The most specific class listed wins (checked along the error's MRO).
STATUS: dict[type[Exception], int] = {
    InferenceError: 400,
    InvalidInput: 400,
    ImageRejected: 400,
    ImageTooLarge: 413,
    InputTooLarge: 413,
    ModelNotFound: 404,
    StreamTimedOut: 408,
    VersionRefused: 422,
    Unavailable: 503,
    TimedOut: 504,
}
# Clients may retry these after a second (on this instance or another).
RETRY_LATER = {503}


class ApiError(Exception):
    """An HTTP-level refusal that carries its own status (request parsing, auth, limits of the
    protocol itself)."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        """A refusal with its status.

        Args:
            status: the HTTP status.
            code: the slug for programs.
            message: what is wrong, for people.
            headers: headers to send with the error body.
        """
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def bad_request(message: str, code: str = "bad_request") -> ApiError:
    """A 400 ``ApiError``.

    Args:
        message: what is wrong, for people.
        code: the slug for programs.

    Returns:
        The error, for the caller to raise.
    """
    return ApiError(400, code, message)


def status_of(error: Exception) -> int:
    """The HTTP status of a domain or image error.

    Args:
        error: an ``InferenceError`` or ``ImageRejected``.

    Returns:
        The status of the most specific class of ``error`` in ``STATUS`` (500 if none).
    """
    for kind in type(error).__mro__:
        if kind in STATUS:
            return STATUS[kind]
    return 500


def as_api_error(error: InferenceError | ImageRejected, headers: dict[str, str] | None = None) -> ApiError:
    """The domain error as the API answers it.

    Args:
        error: what the inference core or the image decoder refused.
        headers: headers to send besides ``Retry-After`` (added for every 503).

    Returns:
        An ``ApiError`` with the error's status, code and message.
    """
    status = status_of(error)
    extra = {"Retry-After": "1"} if status in RETRY_LATER else {}
    message = error.message if isinstance(error, InferenceError) else str(error)
    return ApiError(status, error.code, message, {**extra, **(headers or {})})


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of a route's OpenAPI entry for its error statuses.

    Args:
        statuses: the statuses the route may answer with the error body.

    Returns:
        FastAPI's ``responses`` mapping, each status with ``ErrorBody``.
    """
    return {status: {"model": ErrorBody} for status in statuses}


def error_response(
    request: Request, status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The error body as a response, its code recorded for the request's log line.

    Args:
        request: the request answered.
        status: the HTTP status.
        code: the slug for programs.
        message: what is wrong, for people.
        headers: headers to send with it.

    Returns:
        The response.
    """
    request_id = getattr(request.state, "request_id", "")
    request.state.error_code = code
    return JSONResponse(
        {"error": message, "code": code, "request_id": request_id}, status_code=status, headers=headers
    )


_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error with the one error body: domain errors by ``STATUS``, FastAPI's own
    validation failures as 400, anything unexpected as a logged 500.

    Args:
        app: the app to install the handlers on.
    """

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, error: ApiError) -> JSONResponse:
        return error_response(request, error.status, error.code, error.message, error.headers)

    @app.exception_handler(InferenceError)
    async def _domain(request: Request, error: InferenceError) -> JSONResponse:
        api = as_api_error(error)
        return error_response(request, api.status, api.code, api.message, api.headers)

    @app.exception_handler(ImageRejected)
    async def _image_rejected(request: Request, error: ImageRejected) -> JSONResponse:
        return error_response(request, status_of(error), error.code, str(error))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {}
        location = tuple(str(part) for part in first.get("loc", ()))
        where = ".".join(location)
        if location[-1:] in (("model",), ("name",)) and first.get("type") == "string_pattern_mismatch":
            value = first.get("input")
            return error_response(
                request,
                400,
                "invalid_model_name",
                f"invalid model name {value!r}: use letters, digits, '_', '-', '.'",
            )
        message = (
            f"invalid request: {where}: {first.get('msg', 'invalid value')}" if where else "invalid request"
        )
        return error_response(request, 400, "invalid_request", message)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(error.status_code, "http_error")
        return error_response(
            request, error.status_code, code, str(error.detail), getattr(error, "headers", None)
        )

    @app.exception_handler(ClientDisconnect)
    async def _client_gone(request: Request, error: ClientDisconnect) -> JSONResponse:
        # The client hung up before its body had arrived: nothing can reach it, nothing went
        # wrong here. Recorded as 499, nginx's "client closed request", not as a 500.
        return error_response(request, 499, "client_closed_request", "the client closed the connection")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled error", extra={"request_id": getattr(request.state, "request_id", "")})
        return error_response(request, 500, "internal", "internal server error")
