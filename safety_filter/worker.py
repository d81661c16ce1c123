"""The detection worker: one thread, a bounded queue, and work cut into small pieces.

Why pieces: a single worker that scores one 200 KB prompt to the end holds every other request
behind it, long after the client of the big one stopped waiting. So texts longer than
`piece_chars` are cut into overlapping segments (findings are mapped back to the whole text),
each round scores one piece of at most `batch_size` segments taken shortest job first, and jobs
nobody waits for any more (timed out, client gone) are dropped before every round. The queue is
bounded in characters: past `max_queued_chars`, `submit` raises `Overloaded` at once, with a
retry delay estimated from the measured scoring rate. It is bounded in time too: a job that, at
the measured rate, would wait past its deadline behind the jobs served before it (those no
larger: shortest job first) is refused at once, not answered by a timeout when the deadline
passes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from safety_filter.errors import InspectionError, Overloaded
from safety_filter.findings import Finding

log = logging.getLogger("safety_filter.engine")

Findings = tuple[Finding, ...]
IDLE_SECONDS = 60.0  # an idle worker thread ends (so an engine dropped without `close` leaks none)
OVERLAP_CHARS = 512  # segments overlap by this much, so a phrase cut by a boundary is seen whole


class Scorer(Protocol):
    """What a job is scored with: the engine's loaded detectors (`_Loaded`)."""

    def detect(self, texts: Sequence[str]) -> list[Findings]: ...


def segments(text: str, size: int, overlap: int = OVERLAP_CHARS) -> list[tuple[int, str]]:
    """(offset, segment) pieces of `text`, each at most `size` characters, overlapping."""
    if len(text) <= size:
        return [(0, text)]
    step = max(1, size - overlap)
    return [(start, text[start : start + size]) for start in range(0, len(text) - overlap, step)]


def _shifted(finding: Finding, offset: int) -> Finding:
    if not offset or finding.span is None:
        return finding
    return replace(finding, span=(finding.span[0] + offset, finding.span[1] + offset))


@dataclass(eq=False)
class Job:
    """The texts of one `Engine.check` call, as segments still to score."""

    scorer: Scorer
    texts: list[str]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[list[Findings]]
    piece_chars: int
    batch_size: int
    pending: deque[tuple[int, int, str]] = field(default_factory=deque)  # (text index, offset, segment)
    found: list[list[Finding]] = field(default_factory=list)
    chars: int = 0  # characters still to score

    def __post_init__(self) -> None:
        self.found = [[] for _ in self.texts]
        for index, text in enumerate(self.texts):
            for offset, segment in segments(text, self.piece_chars):
                self.pending.append((index, offset, segment))
                self.chars += len(segment)

    @property
    def abandoned(self) -> bool:
        return self.future.done() or self.loop.is_closed()

    def settle(self, *, exception: BaseException | None = None) -> None:
        """Hand the result (or the error) to the waiting coroutine, if it still waits."""
        result = [tuple(dict.fromkeys(bucket)) for bucket in self.found]  # overlaps found twice

        def done() -> None:
            if self.future.done():
                return
            if exception is not None:
                self.future.set_exception(exception)
            else:
                self.future.set_result(result)

        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting
            self.loop.call_soon_threadsafe(done)


Piece = list[tuple[Job, int, int, str]]


class Worker:
    """Runs jobs in one daemon thread (started on the first job), piece by piece."""

    def __init__(self, name: str = "safety-filter-detect") -> None:
        self._name = name
        self._cond = threading.Condition()
        self._incoming: deque[Job] = deque()
        self._queued_chars = 0
        self._chars_per_second = 0.0  # moving average of the measured scoring rate
        self._waiting: set[Job] = set()  # submitted, not yet settled or dropped
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def queued_chars(self) -> int:
        return self._queued_chars

    def submit(self, job: Job, max_queued_chars: int, max_wait_seconds: float | None = None) -> None:
        """Queue `job`, or raise `Overloaded` now if the queue already holds too much, or if
        scoring it would, at the measured rate, end past `max_wait_seconds`.

        A job larger than the bound is still taken when nothing else waits, so every request
        within the policy's text limits can be served by an idle engine.
        """
        with self._cond:
            if self._closed:
                raise InspectionError("the engine is closed")
            if self._queued_chars and self._queued_chars + job.chars > max_queued_chars:
                message = f"{self._queued_chars} characters are already waiting to be scored"
                raise Overloaded(message, retry_after=self._retry_after())
            if self._waiting and max_wait_seconds is not None and self._chars_per_second > 0:
                ahead = sum(other.chars for other in self._waiting if other.chars <= job.chars)
                expected = (ahead + job.chars) / self._chars_per_second
                if expected > max_wait_seconds:
                    message = (f"scoring the {ahead} characters ahead of this check and its own {job.chars} "
                               f"would take about {expected:.1f} s, past the {max_wait_seconds:g} s deadline")
                    raise Overloaded(message, retry_after=self._retry_after())
            self._queued_chars += job.chars
            self._waiting.add(job)
            self._incoming.append(job)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name=self._name, daemon=True)
                self._thread.start()
            self._cond.notify()

    def _retry_after(self) -> float:
        if self._chars_per_second <= 0:
            return 1.0
        return min(60.0, max(1.0, self._queued_chars / self._chars_per_second))

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread once the jobs still waited for are done (abandoned ones are dropped)."""
        with self._cond:
            self._closed = True
            self._cond.notify()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    # -- the thread ------------------------------------------------------------------------

    def _work(self) -> None:
        active: list[Job] = []
        while True:
            with self._cond:
                while not self._incoming and not active:
                    idle = self._closed or not self._cond.wait(IDLE_SECONDS)
                    if idle and not self._incoming:  # closed, or idle: `submit` starts a new thread
                        self._thread = None
                        return
                active.extend(self._incoming)
                self._incoming.clear()
            active = self._drop_abandoned(active)
            if active:
                self._run(_next_piece(active))
                for job in [j for j in active if not j.pending]:
                    active.remove(job)
                    self._forget(job)
                    job.settle()

    def _drop_abandoned(self, jobs: list[Job]) -> list[Job]:
        kept = []
        for job in jobs:
            if job.abandoned:
                log.debug("dropping a check nobody waits for (%d characters)", job.chars)
                self._account(job, job.chars)
                job.pending.clear()
                self._forget(job)
            else:
                kept.append(job)
        return kept

    def _forget(self, job: Job) -> None:
        with self._cond:
            self._waiting.discard(job)

    def _account(self, job: Job, chars: int) -> None:
        job.chars -= chars
        with self._cond:
            self._queued_chars -= chars

    def _run(self, piece: Piece) -> None:
        groups: dict[int, Piece] = {}
        for item in piece:
            groups.setdefault(id(item[0].scorer), []).append(item)
        for items in groups.values():
            self._score(items)

    def _score(self, items: Piece) -> None:
        started = time.perf_counter()
        try:
            found = items[0][0].scorer.detect([segment for *_, segment in items])
        except Exception:
            jobs = list(dict.fromkeys(job for job, *_ in items))
            if len(jobs) > 1:  # isolate the job that fails so it can't fail the others
                for job in jobs:
                    self._score([item for item in items if item[0] is job])
                return
            log.exception("detection failed")
            job = jobs[0]
            self._account(job, job.chars)
            job.pending.clear()
            job.settle(exception=RuntimeError("a detector failed"))
            return
        chars = 0
        for (job, index, offset, segment), findings in zip(items, found, strict=True):
            job.found[index].extend(_shifted(f, offset) for f in findings)
            self._account(job, len(segment))
            chars += len(segment)
        self._measure(chars, time.perf_counter() - started)

    def _measure(self, chars: int, seconds: float) -> None:
        if seconds > 0 and chars:
            rate = chars / seconds
            self._chars_per_second = rate if not self._chars_per_second else 0.8 * self._chars_per_second + 0.2 * rate


def _next_piece(active: list[Job]) -> Piece:
    """Segments for one round: shortest job first, at most `batch_size` and about `piece_chars`."""
    batch_size, piece_chars = active[0].batch_size, active[0].piece_chars
    piece: Piece = []
    size = 0
    for job in sorted(active, key=lambda j: j.chars):
        while job.pending and len(piece) < batch_size:
            index, offset, segment = job.pending[0]
            if piece and size + len(segment) > piece_chars:
                return piece
            job.pending.popleft()
            piece.append((job, index, offset, segment))
            size += len(segment)
    return piece

