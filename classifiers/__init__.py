"""Training pipeline for safety-filter's local classifier (not needed at runtime)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def repo_relative(path: str | Path) -> str:
    """`path` relative to the repository root when it is inside it (reports name files portably)."""
    path = Path(path).resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)
