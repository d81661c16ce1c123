"""Azure OpenAI's content-filter formats: the results object, the prompt-blocked 400, annotations.

Verdicts are written the way Azure OpenAI writes its content-filter results, so existing clients
read them unchanged.
"""

from __future__ import annotations

from typing import Any

from safety_filter.findings import CATEGORIES, Verdict


def content_filter_results(verdict: Verdict) -> dict[str, Any]:
    """Azure's `content_filter_results` object for one verdict (all categories present)."""
    results: dict[str, Any] = {}
    for name in (*CATEGORIES, *(c for c in verdict.categories if c not in CATEGORIES)):
        result = verdict.categories.get(name)
        if result is not None:
            results[name] = {"filtered": result.filtered, "severity": result.severity.value}
    if verdict.error is not None:
        results["error"] = {"code": "content_filter_error", "message": verdict.error}
    return results


def prompt_filter_results(verdict: Verdict) -> list[dict[str, Any]]:
    return [{"prompt_index": 0, "content_filter_results": content_filter_results(verdict)}]


def prompt_blocked_body(verdict: Verdict) -> dict[str, Any]:
    """The HTTP 400 body Azure OpenAI sends when a prompt is filtered."""
    return {
        "error": {
            "message": (
                "The response was filtered due to the prompt triggering safety-filter's content "
                f"management policy ({', '.join(verdict.filtered_categories()) or 'policy'}). "
                "Please modify your prompt and retry."
            ),
            "type": None,
            "param": "prompt",
            "code": "content_filter",
            "status": 400,
            "innererror": {
                "code": "ResponsibleAIPolicyViolation",
                "content_filter_result": content_filter_results(verdict),
            },
        }
    }


def filter_error_body(verdict: Verdict) -> dict[str, Any]:
    """HTTP 503 body for a prompt that could not be inspected under the `closed` fail mode."""
    return {
        "error": {
            "message": f"The request was refused because it could not be inspected: {verdict.error}",
            "type": None,
            "param": "prompt",
            "code": "content_filter_error",
            "status": 503,
            "innererror": {"code": "ContentFilterError", "content_filter_result": content_filter_results(verdict)},
        }
    }
