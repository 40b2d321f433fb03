"""What route handlers receive through FastAPI's dependency injection."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.inference.state import ServiceState


async def get_service(request: Request) -> ServiceState:
    """The app's ``ServiceState``.

    Args:
        request: the request being handled.

    Returns:
        The state that ``create_app`` attached to the app.
    """
    # async on purpose: FastAPI runs plain-def dependencies in the thread pool, a needless hop.
    service: ServiceState = request.app.state.service
    return service


ServiceDep = Annotated[ServiceState, Depends(get_service)]
