"""Overload: a huge check cannot hold the worker, and a full queue is refused at once."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence

import httpx
import pytest

from safety_filter import Engine, SafetyFilterMiddleware
from safety_filter.audit import AuditLog
from safety_filter.errors import Overloaded
from safety_filter.findings import Action, Finding
from safety_filter.policy import PolicyError

from .helpers import ChatApp, FakeDetector, chat_request, make_policy

PIECE = 1024


class SlowDetector(FakeDetector):
    """The fake detector, taking `delay` seconds per call; logs each call's texts in order."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self.log: list[str] = []  # "huge" / the benign text / "TIMEOUT", in the order they happened
        self.started = threading.Event()

    def detect(self, texts: Sequence[str]) -> list[list[Finding]]:
        self.started.set()
        with self.lock:
            self.log.extend("huge" if text.startswith("x") else text for text in texts)
        time.sleep(self.delay)
        return super().detect(texts)

    def mark(self, event: str) -> None:
        with self.lock:
            self.log.append(event)


def policy(**detectors: object):  # type: ignore[no-untyped-def]
    return make_policy(detectors={"piece_chars": PIECE, "batch_size": 4, **detectors})


@pytest.mark.anyio
async def test_a_huge_check_that_timed_out_is_dropped_before_the_next_one() -> None:
    detector = SlowDetector(delay=0.05)
    engine = Engine(policy(timeout_seconds=0.3), [detector])
    await engine.aload()
    huge = "x" * (200 * PIECE)  # about 230 segments: minutes of scoring at this rate
    verdict = (await engine.check([huge], "prompt"))[0]
    detector.mark("TIMEOUT")
    assert verdict.action is Action.BLOCK and "timed out" in (verdict.error or "")
    benign = (await engine.check(["hello there"], "prompt"))[0]
    assert benign.action is Action.ALLOW and benign.error is None
    after = detector.log[detector.log.index("TIMEOUT") + 1 :]
    # At most the one round already running when the huge check gave up (4 segments), then the benign text.
    assert "hello there" in after
    assert after.index("hello there") <= 4
    assert after[after.index("hello there") + 1 :] == []  # the abandoned check never resumes
    assert engine._worker.queued_chars == 0
    engine.close()


@pytest.mark.anyio
async def test_a_short_check_overtakes_a_long_one_still_waited_for() -> None:
    detector = SlowDetector(delay=0.02)
    engine = Engine(policy(timeout_seconds=60), [detector])
    await engine.aload()
    huge = asyncio.create_task(engine.check(["x" * (40 * PIECE) + " zzhate"], "prompt"))
    await asyncio.to_thread(detector.started.wait, 10)
    detector.mark("SUBMIT")
    short = (await engine.check(["short text"], "prompt"))[0]
    assert short.action is Action.ALLOW and not huge.done()
    after = detector.log[detector.log.index("SUBMIT") + 1 :]
    assert after.index("short text") <= 4  # one round of the long check at most
    long_verdict = (await huge)[0]
    assert long_verdict.action is Action.BLOCK and long_verdict.error is None  # its last segment still counted
    engine.close()


def test_a_phrase_across_a_segment_boundary_is_found_at_its_place() -> None:
    text = "x" * (PIECE - 3) + "zzhate" + "y" * (3 * PIECE)
    engine = Engine(policy(), [FakeDetector()])
    loaded = engine.load()
    from safety_filter.worker import segments

    assert all("zzhate" not in segment for _, segment in segments(text, PIECE)[:1])  # cut by the first boundary
    found = asyncio.run(_check_findings(engine, text))
    assert [(f.category, f.span) for f in found] == [("hate", (PIECE - 3, PIECE + 3))]
    assert loaded is engine.load()
    engine.close()


async def _check_findings(engine: Engine, text: str) -> tuple[Finding, ...]:
    verdict = (await engine.check([text], "prompt"))[0]
    assert verdict.action is Action.BLOCK
    return verdict.findings


@pytest.mark.anyio
async def test_a_full_queue_is_refused_at_once_not_after_the_timeout() -> None:
    detector = SlowDetector(delay=0.5)
    engine = Engine(policy(timeout_seconds=60, max_queued_chars=2500), [detector])
    await engine.aload()
    busy = asyncio.create_task(
        engine.check(["first text " * 100], "prompt")
    )  # 1100 characters: 1612 in 2 overlapping segments
    await asyncio.to_thread(detector.started.wait, 10)
    queued = asyncio.create_task(engine.check(["second text " * 50], "prompt"))  # 600: still fits
    await asyncio.sleep(0)
    with pytest.raises(Overloaded) as refused:
        await engine.check(["third text " * 50], "prompt")
    assert not busy.done() and not queued.done()  # refused while the queue was still busy
    assert refused.value.retry_after >= 1
    assert (await busy)[0].action is Action.ALLOW and (await queued)[0].action is Action.ALLOW
    assert (await engine.check(["third text " * 50], "prompt"))[0].action is Action.ALLOW  # room again
    engine.close()


@pytest.mark.anyio
async def test_a_check_that_could_not_finish_before_its_deadline_is_refused_at_once() -> None:
    detector = SlowDetector(delay=0.5)  # one call per check here: about 1,200 characters a second
    engine = Engine(policy(timeout_seconds=2, max_queued_chars=10**6), [detector])
    await engine.aload()
    await engine.check(["warm text " * 60], "prompt")  # measures the rate
    detector.started.clear()
    busy = asyncio.create_task(engine.check(["first text " * 90], "prompt"))  # 990 characters
    await asyncio.to_thread(detector.started.wait, 10)
    queued = asyncio.create_task(engine.check(["second text " * 80], "prompt"))  # 960: done in time
    await asyncio.sleep(0)
    with pytest.raises(Overloaded, match="deadline") as refused:
        await engine.check(["third text " * 90], "prompt")  # 990 behind 1,950: past 2 s
    assert not busy.done() and not queued.done()  # refused while the others were still scored
    assert refused.value.retry_after >= 1
    assert (await busy)[0].action is Action.ALLOW and (await queued)[0].action is Action.ALLOW
    assert (await engine.check(["third text " * 90], "prompt"))[0].action is Action.ALLOW  # in time again
    engine.close()


@pytest.mark.anyio
async def test_a_full_queue_answers_503_with_retry_after_through_the_middleware() -> None:
    detector = SlowDetector(delay=0.5)
    engine = Engine(policy(timeout_seconds=60, max_queued_chars=1000), [detector])
    await engine.aload()
    app = ChatApp()
    middleware = SafetyFilterMiddleware(app, engine=engine, audit=AuditLog(None))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=middleware), base_url="http://t") as client:
        busy = asyncio.create_task(client.post("/v1/chat/completions", json=chat_request("a" * 900)))
        await asyncio.to_thread(detector.started.wait, 10)
        response = await client.post("/v1/chat/completions", json=chat_request("b" * 900))
        assert not busy.done()
        assert response.status_code == 503 and int(response.headers["retry-after"]) >= 1
        assert response.json()["error"]["code"] == "content_filter_overloaded"
        assert (await busy).status_code == 200
    assert app.calls == 1  # the refused prompt never reached the app
    engine.close()


@pytest.mark.parametrize("key,value", [("max_queued_chars", 0), ("piece_chars", 10), ("max_queued_chars", "lots")])
def test_bad_queue_settings_are_refused_naming_the_key(key: str, value: object) -> None:
    with pytest.raises(PolicyError, match=key):
        make_policy(detectors={key: value})
