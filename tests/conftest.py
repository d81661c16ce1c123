"""Shared fixtures. The helpers (fake detector, chat apps, servers) live in `tests.helpers`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from safety_filter.engine import Engine


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def shipped_engine() -> Iterator[Engine]:
    """The shipped policy with its real detectors, loaded and warmed up once for the whole run
    (as a server does at start-up: person recognition loaded)."""
    engine = Engine.from_policy_file()
    engine.warm_up()
    yield engine
    engine.close()
