"""Answers the filter writes itself, and the request-body helpers both halves share."""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from typing import Any

from safety_filter.asgi.types import Header, Scope, Send
from safety_filter.findings import Action

ACTION_HEADER = b"x-safety-filter-action"


class Reject(Exception):
    """Answer the client with this error (in the API's own error format) instead of calling the app."""

    def __init__(self, status: int, message: str, code: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


async def answer(
    send: Send, status: int, body: dict[str, Any], action: Action | str, headers: Sequence[Header] = ()
) -> None:
    """Answer with a JSON body of the filter's own (errors and blocks)."""
    payload = json.dumps(body, ensure_ascii=False).encode()
    value = action.value if isinstance(action, Action) else action
    start = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        (ACTION_HEADER, value.encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": [*start, *headers]})
    await send({"type": "http.response.body", "body": payload, "more_body": False})


def _has_body(scope: Scope) -> bool:
    headers = {k.lower(): v for k, v in scope.get("headers", [])}
    return b"transfer-encoding" in headers or headers.get(b"content-length", b"0").strip() not in (b"", b"0")


def has_body(scope: Scope) -> bool:
    headers = {k.lower(): v for k, v in scope.get("headers", [])}
    return b"transfer-encoding" in headers or headers.get(b"content-length", b"0").strip() not in (b"", b"0")


def stream_decoder(encoding: str) -> Any:
    """An incremental decompressor for a compressed stream, or ValueError for an unknown coding."""
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompressobj(zlib.MAX_WBITS)
    raise ValueError(f"content encoding {encoding!r} cannot be decoded for inspection")


def decompress(raw: bytes, encoding: str, limit: int) -> bytes:
    if encoding in ("", "identity"):
        return raw
    if encoding not in ("gzip", "deflate", "x-gzip"):
        raise Reject(415, f"content encoding {encoding!r} is not supported", "unsupported_encoding")
    wbits = 16 + zlib.MAX_WBITS if encoding != "deflate" else zlib.MAX_WBITS
    decompressor = zlib.decompressobj(wbits)
    try:
        out = decompressor.decompress(raw, limit + 1)
    except zlib.error:
        raise Reject(400, f"the body is not valid {encoding} data", "invalid_encoding") from None
    if len(out) > limit or decompressor.unconsumed_tail:
        raise Reject(413, f"the request body is larger than {limit} bytes", "request_too_large")
    return out
