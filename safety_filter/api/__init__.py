"""API adapters, one module per wire format, and the registry the middleware looks routes up in."""

from __future__ import annotations

import re
from collections.abc import Iterable

from safety_filter.api.base import Adapter, Channel, OutputText
from safety_filter.api.openai import OpenAIChat, OpenAICompletions
from safety_filter.api.responses import OpenAIResponses

__all__ = ["ADAPTERS", "Adapter", "Channel", "OutputText", "adapter_for", "unsupported_route"]

ADAPTERS: tuple[Adapter, ...] = (OpenAIChat(), OpenAICompletions(), OpenAIResponses())

# APIs that carry prompts and completions but have no adapter yet: refused, never passed unread.
UNSUPPORTED_ROUTES = tuple(
    re.compile(pattern, re.IGNORECASE)
    for pattern in (
        # Responses' other routes (compact, input_tokens, cancel...): only creation is inspected.
        r"(?:/openai)?(?:/v1)?/responses/.+",
        r"/openai/deployments/[^/]+/responses/.+",
        r"(?:/v1)?/messages(?:/.*)?",
        r"/api/(?:chat|generate)/?",
        r"/(?:completion|infill)/?",
        r"(?:/v1)?/(?:threads|assistants|realtime|batches)(?:/.*)?",
    )
)


def adapter_for(path: str, extra_routes: Iterable[str] = ()) -> Adapter | None:
    """The adapter for a POST to `path`, or None when the route is not inspected.

    `extra_routes` (the policy's `routes:`) are read as OpenAI chat, or completions when they end
    in `/completions` without `chat`.
    """
    for adapter in ADAPTERS:
        if adapter.matches(path):
            return adapter
    for extra in extra_routes:
        if re.fullmatch(extra, path, re.IGNORECASE):
            lowered = path.rstrip("/").lower()
            return ADAPTERS[1] if lowered.endswith("/completions") and "chat" not in lowered else ADAPTERS[0]
    return None


def unsupported_route(path: str) -> bool:
    """A route of an LLM API this version cannot inspect (refused rather than passed)."""
    return any(pattern.fullmatch(path) for pattern in UNSUPPORTED_ROUTES)
