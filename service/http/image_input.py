"""The three ways to send an image to /classify: multipart field ``image``, a raw body with an
``image/*`` content type, or JSON ``{"image_base64": "..."}``."""

from __future__ import annotations

import base64
import binascii
import json

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from service.http.errors import ApiError, bad_request

ACCEPTED = "multipart/form-data (field 'image'), image/* or application/json ({\"image_base64\": ...})"

OPENAPI_REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["image"],
                    "properties": {"image": {"type": "string", "format": "binary"}},
                },
            },
            "image/png": {"schema": {"type": "string", "format": "binary"}},
            "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["image_base64"],
                    "properties": {"image_base64": {"type": "string", "description": "base64 image file"}},
                },
            },
        },
    }
}


async def read_body(request: Request) -> bytes:
    """The whole body, which the request does not keep (``Request.body`` would): once a request
    has what it needs of its body (an image decoded from base64, OIP rows), the body is freed
    while the request waits for a thread.

    Args:
        request: the request.

    Returns:
        The body.
    """
    return b"".join([chunk async for chunk in request.stream()])


async def read_image_bytes(request: Request, max_body_bytes: int) -> bytes:
    """The image file's bytes, from whichever of the three forms the request sent.

    Args:
        request: the request.
        max_body_bytes: the middleware's cap on the body, which bounds a multipart file too.

    Returns:
        The image file's bytes.

    Raises:
        ApiError: 415 for another content type, 400 for a malformed body.
    """
    content_type = request.headers.get("content-type", "")
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == "multipart/form-data":
        return await _from_multipart(request, max_body_bytes)
    if media_type.startswith("image/"):
        return await read_body(request)
    if media_type == "application/json":
        return await _from_json(request)
    shown = media_type or "none"
    raise ApiError(415, "unsupported_media_type", f"content type {shown} is not accepted; send {ACCEPTED}")


async def _from_multipart(request: Request, max_body_bytes: int) -> bytes:
    """The ``image`` file field of a multipart body."""
    parser = MultiPartParser(request.headers, request.stream(), max_files=1, max_fields=8)
    # The file stays in memory, where the body cap and the concurrency cap bound it: Starlette
    # would spool parts over 1 MiB to /tmp, where nothing bounds the sum over uploads.
    parser.spool_max_size = max_body_bytes
    try:
        form = await parser.parse()
    except MultiPartException as error:
        raise bad_request(f"malformed multipart body ({error.message})", "invalid_multipart") from None
    try:
        upload = form.get("image")
        if not isinstance(upload, UploadFile):
            raise bad_request("multipart body needs a file field named 'image'", "missing_field")
        return await upload.read()
    finally:
        await form.close()


async def _from_json(request: Request) -> bytes:
    """The image of a JSON ``{"image_base64": ...}`` body."""
    body = await read_body(request)
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise bad_request("the body is not valid JSON", "invalid_json") from None
    except RecursionError:  # e.g. 100,000 nested brackets: the parser gives up, the client gets a 400
        raise bad_request("the JSON body is nested too deeply", "invalid_json") from None
    if not isinstance(payload, dict) or "image_base64" not in payload:
        raise bad_request("JSON body must be an object with an 'image_base64' field", "missing_field")
    return decode_base64_image(payload["image_base64"])


def decode_base64_image(text: object) -> bytes:
    """The bytes of a base64 string, with or without a ``data:image/...;base64,`` prefix.

    Args:
        text: the ``image_base64`` value.

    Returns:
        The image file's bytes.

    Raises:
        ApiError: 400 unless ``text`` is a non-empty base64 string.
    """
    if not isinstance(text, str) or not text:
        raise bad_request("image_base64 must be a non-empty base64 string", "invalid_base64")
    if text.startswith("data:"):
        _, _, text = text.partition(",")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise bad_request("image_base64 is not valid base64", "invalid_base64") from None
