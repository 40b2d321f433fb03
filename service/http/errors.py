"""The one error shape of the API: a non-2xx status with
``{"error": "<message>", "code": "<slug>", "request_id": "..."}``."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from training.contract.images.decode import ImageRejected, ImageTooLarge

log = logging.getLogger("firstspike.service")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def bad_request(message: str, code: str = "bad_request") -> ApiError:
    return ApiError(400, code, message)


def error_response(request: Request, status: int, code: str, message: str,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    request_id = getattr(request.state, "request_id", "")
    request.state.error_code = code
    return JSONResponse({"error": message, "code": code, "request_id": request_id}, status_code=status,
                        headers=headers)


_STATUS_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                 405: "method_not_allowed", 413: "payload_too_large", 415: "unsupported_media_type"}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, error: ApiError) -> JSONResponse:
        return error_response(request, error.status, error.code, error.message, error.headers)

    @app.exception_handler(ImageRejected)
    async def _image_rejected(request: Request, error: ImageRejected) -> JSONResponse:
        return error_response(request, 413 if isinstance(error, ImageTooLarge) else 400, error.code, str(error))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {}
        location = tuple(str(part) for part in first.get("loc", ()))
        where = ".".join(location)
        if location[-1:] in (("model",), ("name",)) and first.get("type") == "string_pattern_mismatch":
            value = first.get("input")
            return error_response(request, 400, "invalid_model_name",
                                  f"invalid model name {value!r}: use letters, digits, '_', '-', '.'")
        message = f"invalid request: {where}: {first.get('msg', 'invalid value')}" if where else "invalid request"
        return error_response(request, 400, "invalid_request", message)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(error.status_code, "http_error")
        return error_response(request, error.status_code, code, str(error.detail), getattr(error, "headers", None))

    @app.exception_handler(ClientDisconnect)
    async def _client_gone(request: Request, error: ClientDisconnect) -> JSONResponse:
        # The client hung up before its body had arrived: nothing can reach it, nothing went
        # wrong here. Recorded as 499, nginx's "client closed request", not as a 500.
        return error_response(request, 499, "client_closed_request", "the client closed the connection")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled error", extra={"request_id": getattr(request.state, "request_id", "")})
        return error_response(request, 500, "internal", "internal server error")
