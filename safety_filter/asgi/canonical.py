"""One canonical (method, path) per request, computed once.

The middleware decides on it and the proxy forwards exactly it. Servers, frameworks and HTTP
clients disagree on what `/v1/./chat/completions`, `//v1/...`, `%2e`, `;x=1` or `post` mean
(httpx removes dot segments; some servers merge slashes; some honour method-override headers),
so a form that two of them could read differently is refused with a 400 instead of guessed at:
the route the filter inspects is then always the route the model server runs.
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

# Headers that make some server or framework run another method or path than the request line's.
OVERRIDE_HEADERS = frozenset(
    {
        b"x-http-method-override",
        b"x-http-method",
        b"x-method-override",
        b"x-original-method",
        b"x-original-url",
        b"x-rewrite-url",
        b"x-override-url",
    }
)
_TOKEN = re.compile(r"[A-Z]+")
_UNSAFE = re.compile(r"[\x00-\x20\x7f\\;#?]")
_SAFE_IN_PATH = "/:@!$&'()*+,=-._~"


class AmbiguousRequest(ValueError):
    """A request line or header that different servers could route differently."""


@dataclass(frozen=True, slots=True)
class Target:
    method: str
    path: str  # decoded, canonical; forwarded percent-encoded as `raw_path`

    @property
    def raw_path(self) -> bytes:
        return quote(self.path, safe=_SAFE_IN_PATH).encode("ascii")


def canonical_target(scope: MutableMapping[str, Any]) -> Target:
    """The (method, path) this request means, or `AmbiguousRequest` saying why it can't be told."""
    method = str(scope.get("method", ""))
    if not _TOKEN.fullmatch(method):
        raise AmbiguousRequest(f"the method {method!r} must be an upper-case HTTP method such as POST")
    for key, _ in scope.get("headers", []):
        if key.lower() in OVERRIDE_HEADERS:
            raise AmbiguousRequest(f"the {key.decode('latin-1')} header is refused: it changes the method or path")
    raw = scope.get("raw_path")
    raw_text = (
        raw.decode("latin-1")
        if isinstance(raw, bytes | bytearray)
        else quote(scope.get("path", ""), safe=_SAFE_IN_PATH)
    )
    raw_text = raw_text.split("?", 1)[0]
    if not raw_text.startswith("/"):
        raise AmbiguousRequest(
            "the request target must be a path starting with '/' (absolute-form targets are refused)"
        )
    try:
        path = unquote(raw_text, errors="strict")
    except UnicodeDecodeError:
        raise AmbiguousRequest("the path is not valid UTF-8 once percent-decoded") from None
    if "%" in path and unquote(path) != path:
        raise AmbiguousRequest("the path is percent-encoded twice")
    if "%2f" in raw_text.lower() or "%5c" in raw_text.lower():
        raise AmbiguousRequest("the path holds an encoded '/' or '\\'")
    if _UNSAFE.search(path):
        raise AmbiguousRequest("the path holds a character servers read differently (';', '\\', '#', space or control)")
    segments = path.split("/")[1:]
    if any(segment in (".", "..") for segment in segments):
        raise AmbiguousRequest("the path holds a '.' or '..' segment")
    if any(segment == "" for segment in segments[:-1]):
        raise AmbiguousRequest("the path holds an empty segment ('//')")
    return Target(method, path)


def apply(scope: MutableMapping[str, Any], target: Target) -> None:
    """Make the app (and the proxy) see exactly the canonical target."""
    scope["path"] = target.path
    scope["raw_path"] = target.raw_path
