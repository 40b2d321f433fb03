"""Admin endpoints need ``Authorization: Bearer <FIRSTSPIKE_API_KEY>``; with no key set they are
disabled altogether."""

from __future__ import annotations

import hmac

from fastapi import Request

from service.http.dependencies import ServiceDep
from service.http.errors import ApiError


async def require_admin(request: Request, service: ServiceDep) -> None:
    """Refuse the request unless it carries the admin key.

    Args:
        request: the request, with its ``Authorization`` header.
        service: the app's state (``settings.api_key``).

    Raises:
        ApiError: 403 while no key is set, 401 without the right key.
    """
    key = service.settings.api_key
    if not key:
        raise ApiError(
            403, "admin_disabled", "admin endpoints are disabled: set FIRSTSPIKE_API_KEY to enable them"
        )
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    # constant-time comparison, so the key cannot be guessed from response times
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), key.encode()):
        raise ApiError(
            401,
            "unauthorized",
            "admin endpoints need Authorization: Bearer <FIRSTSPIKE_API_KEY>",
            {"WWW-Authenticate": "Bearer"},
        )
