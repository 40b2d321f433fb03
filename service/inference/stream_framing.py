"""Event packets out of what arrives on the wire: WebSocket messages, or a body's chunks framed
as 16-byte records (``application/x-dvs-events``) or NDJSON lines.

Each packet, a record run or a line as a whole message on the WebSocket, must arrive within the
idle timeout of the one before, so that a client cannot keep a session by trickling bytes.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from typing import Any, TypeVar

import numpy as np

from service.inference.errors import InputTooLarge, InvalidInput
from service.inference.streams import next_within, parse_binary_packet, parse_json_packet
from training.contract.events.format import RECORD_BYTES

T = TypeVar("T")
Header = dict[str, Any]  # {"format": "dvs-events/1", "width": W, "height": H}


def message_events(text: str | None, data: bytes | None) -> np.ndarray | None:
    """The events of one WebSocket message.

    Args:
        text: the message's text, for a JSON packet or ``{"type": "end"}``.
        data: the message's bytes, for binary records.

    Returns:
        The events, or None for ``{"type": "end"}``.

    Raises:
        InvalidInput: text that is not JSON, or not a packet.
    """
    if data is not None:
        return parse_binary_packet(data)
    try:
        payload = json.loads(text or "")
    except (json.JSONDecodeError, RecursionError):
        raise InvalidInput('a text message must be JSON: a packet or {"type": "end"}', "bad_packet") from None
    if isinstance(payload, dict) and payload.get("type") == "end":
        return None
    return parse_json_packet(payload)


async def binary_packets(chunks: AsyncIterator[bytes]) -> AsyncIterator[np.ndarray]:
    """The whole records of each chunk, the rest carried over to the next.

    Args:
        chunks: the body as it arrives.

    Yields:
        The events of the records completed by each chunk.

    Raises:
        InvalidInput: the body ends inside a record.
    """
    pending = b""
    async for chunk in chunks:
        pending += chunk
        whole = len(pending) - len(pending) % RECORD_BYTES
        if whole:
            yield parse_binary_packet(pending[:whole])
            pending = pending[whole:]
    if pending:
        raise InvalidInput(f"the body ends inside a record ({len(pending)} stray bytes)", "partial_record")


async def ndjson_packets(
    chunks: AsyncIterator[bytes], max_line_bytes: int
) -> AsyncIterator[Header | np.ndarray]:
    """The header line (as a dict) if the body starts with one, then the events of each packet
    line, up to an optional ``{"type": "end"}``.

    Args:
        chunks: the body as it arrives.
        max_line_bytes: the longest line taken.

    Yields:
        The header, then each line's events.

    Raises:
        InputTooLarge: a line longer than ``max_line_bytes``.
        InvalidInput: a line that is not a JSON packet, or a body that ends inside a line.
    """
    pending = b""
    first = True
    async for chunk in chunks:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        if len(pending) > max_line_bytes:
            raise InputTooLarge(
                f"an NDJSON line may hold at most {max_line_bytes} bytes", "message_too_large"
            )
        for line in lines:
            if not line.strip():
                continue
            try:
                payload = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
                raise InvalidInput("every NDJSON line must be a JSON object", "bad_packet") from None
            if first and isinstance(payload, dict) and "format" in payload:
                first = False
                yield payload
                continue
            first = False
            if isinstance(payload, dict) and payload.get("type") == "end":
                return
            yield parse_json_packet(payload)
    if pending.strip():
        raise InvalidInput("the NDJSON body ends inside a line", "bad_packet")


async def each_within(packets: AsyncIterator[T], idle_timeout_s: float, deadline: float) -> AsyncIterator[T]:
    """``packets``, each of which must arrive within ``idle_timeout_s`` of the one before (of
    the start, for the first), and all before ``deadline``.

    Args:
        packets: the packets as they are framed.
        idle_timeout_s: the idle timeout.
        deadline: the session's end on the event loop's clock (``streams.wall_clock``).

    Yields:
        The packets.

    Raises:
        StreamTimedOut: a packet late, or the session past its deadline.
    """
    while True:
        try:
            packet = await next_within(anext(packets), idle_timeout_s, deadline, "whole packet")
        except StopAsyncIteration:
            return
        yield packet


async def prepend(items: Iterable[T], rest: AsyncIterator[T]) -> AsyncIterator[T]:
    """``items``, then what ``rest`` yields.

    Args:
        items: what comes first.
        rest: what comes after.

    Yields:
        Each item in turn.
    """
    for item in items:
        yield item
    async for item in rest:
        yield item
