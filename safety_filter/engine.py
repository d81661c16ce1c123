"""The engine: the one place where texts become verdicts.

The middleware, the proxy, the CLI (`scan`, `eval`) and the benchmarks all call `Engine.check`
or `Engine.check_sync`; there is no second code path.

- Detection runs in ONE worker thread, never on the event loop. Texts from concurrent requests
  that arrive while the worker is busy are scored together as one batch.
- Findings are cached by text hash, so chat history re-sent every turn is not re-scored.
- A detector that raises or times out never lets text through unseen: the text gets the
  policy's fail-mode verdict (`closed` blocks, `open` allows with an error annotation).
- Policy and list files are watched; a change is loaded in the background and swapped in
  atomically. A change that fails to load is logged and the last good version stays active.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from safety_filter import metrics
from safety_filter.detectors import build_detectors
from safety_filter.detectors.base import Detector
from safety_filter.findings import Finding, Verdict
from safety_filter.policy import Policy, Role, decide, failed_verdict, load_policy

log = logging.getLogger("safety_filter.engine")

Findings = tuple[Finding, ...]


class _FindingsCache:
    """A thread-safe LRU map from text hash to findings."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._items: OrderedDict[bytes, Findings] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(text: str) -> bytes:
        return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()

    def get(self, key: bytes) -> Findings | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: bytes, findings: Findings) -> None:
        if self._capacity == 0:
            return
        with self._lock:
            self._items[key] = findings
            self._items.move_to_end(key)
            while len(self._items) > self._capacity:
                self._items.popitem(last=False)


@dataclass
class _Loaded:
    """A policy with its loaded detectors and their cache: swapped as one on reload."""

    policy: Policy
    detectors: list[Detector]
    cache: _FindingsCache
    watched: dict[Path, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def detect(self, texts: Sequence[str]) -> list[Findings]:
        """Run every detector over `texts` (the caller handles exceptions)."""
        merged: list[list[Finding]] = [[] for _ in texts]
        metrics.BATCH_TEXTS.observe(len(texts))
        with self.lock, metrics.DETECTION_SECONDS.time():
            for detector in self.detectors:
                results = detector.detect(texts)
                if len(results) != len(texts):
                    raise RuntimeError(f"detector {detector.name!r} returned {len(results)} results for {len(texts)} texts")
                for bucket, found in zip(merged, results, strict=True):
                    bucket.extend(found)
        return [tuple(bucket) for bucket in merged]


@dataclass
class _Job:
    loaded: _Loaded
    texts: list[str]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[list[Findings]]


class Engine:
    """Checks texts against a policy. Build with `Engine.from_policy_file` or `Engine(policy)`.

    `detectors` replaces the ones the policy would build (tests, benchmarks, embedding code).
    """

    def __init__(
        self,
        policy: Policy | None = None,
        detectors: Sequence[Detector] | None = None,
        *,
        policy_path: str | Path | None = None,
    ) -> None:
        self._policy_path = Path(policy_path) if policy_path is not None else None
        self._given_detectors = list(detectors) if detectors is not None else None
        self._initial_policy = policy
        self._loaded: _Loaded | None = None
        self._load_lock = threading.Lock()
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._worker: threading.Thread | None = None
        self._next_watch = 0.0
        self._reloading = False
        self._warm = False

    @classmethod
    def from_policy_file(cls, path: str | Path | None = None) -> Engine:
        """An engine for the policy at `path` (the shipped default when None), reloaded on change."""
        return cls(load_policy(path), policy_path=path)

    # -- loading ---------------------------------------------------------------------------

    @property
    def policy(self) -> Policy:
        return self.load().policy

    @property
    def detectors(self) -> list[Detector]:
        return list(self.load().detectors)

    def versions(self) -> dict[str, str]:
        """Each loaded detector's version (list content hash, model digest) for the audit trail."""
        return {d.name: str(getattr(d, "version", "") or "") for d in self.load().detectors}

    def load(self) -> _Loaded:
        """Load the policy's detectors once (idempotent, thread-safe). Raises if they can't load."""
        if self._loaded is None:
            with self._load_lock:
                if self._loaded is None:
                    policy = self._initial_policy or load_policy(self._policy_path)
                    self._loaded = self._build(policy, previous=None)
        return self._loaded

    async def aload(self) -> None:
        """Load and warm up without blocking the event loop (for ASGI lifespan start-up)."""
        await asyncio.to_thread(self.warm_up)

    def warm_up(self) -> None:
        """`load`, then let detectors do their optional slow start-up work (`warm_up()`) now.

        A server wants its first requests fast; a one-shot command does not need this.
        """
        self._warm = True
        _warm(self.load().detectors)

    def _build(self, policy: Policy, previous: _Loaded | None) -> _Loaded:
        if self._given_detectors is not None:
            detectors = self._given_detectors
        else:
            detectors = build_detectors(policy)
        reusable = {_identity(d, previous.policy): d for d in previous.detectors} if previous else {}
        fresh: list[Detector] = []
        for detector in detectors:
            same = reusable.get(_identity(detector, policy))
            if same is not None and not _changed(same, previous):
                fresh.append(same)
            else:
                detector.load()
                fresh.append(detector)
        loaded = _Loaded(policy=policy, detectors=fresh, cache=_FindingsCache(policy.detectors.cache_size))
        loaded.watched = _mtimes(self._watched_paths(loaded))
        return loaded

    def _watched_paths(self, loaded: _Loaded) -> list[Path]:
        paths = [self._policy_path] if self._policy_path is not None else []
        for detector in loaded.detectors:
            watched = getattr(detector, "watched_paths", None)
            if watched is not None:
                paths.extend(watched())
        return paths

    def reload(self) -> bool:
        """Re-read the policy and lists now. Returns False (keeping the last good state) on error."""
        current = self.load()
        try:
            policy = load_policy(self._policy_path) if self._policy_path is not None else current.policy
            replacement = self._build(policy, previous=current)
            if self._warm:
                _warm(d for d in replacement.detectors if d not in current.detectors)
        except Exception as exc:
            log.error("reload failed, keeping policy %s: %s", current.policy.label, exc)
            current.watched = _mtimes(current.watched)  # don't retry until the files change again
            return False
        self._loaded = replacement
        log.info("reloaded policy %s", replacement.policy.label)
        return True

    def _maybe_reload(self, loaded: _Loaded) -> None:
        interval = loaded.policy.reload_interval_seconds
        now = time.monotonic()
        if interval <= 0 or now < self._next_watch or self._reloading:
            return
        self._next_watch = now + interval
        if _mtimes(loaded.watched) != loaded.watched:
            self._reloading = True

            def run() -> None:
                try:
                    self.reload()
                finally:
                    self._reloading = False

            threading.Thread(target=run, name="safety-filter-reload", daemon=True).start()

    # -- checking --------------------------------------------------------------------------

    def check_sync(self, texts: Sequence[str], role: Role) -> list[Verdict]:
        """Verdicts for `texts`, computed in the calling thread (CLI, evaluation, benchmarks)."""
        loaded = self.load()
        keys, known, missing = _lookup(loaded, texts)
        if missing:
            try:
                found = loaded.detect(list(missing.values()))
            except Exception as exc:
                log.exception("detection failed")
                return [failed_verdict(loaded.policy, _describe(exc)) for _ in texts]
            known.update(_store(loaded, missing, found))
        return [decide(known[key], loaded.policy, role) for key in keys]

    async def check(self, texts: Sequence[str], role: Role) -> list[Verdict]:
        """Verdicts for `texts`, detected in the engine's worker thread, batched with others."""
        loaded = self._loaded or await asyncio.to_thread(self.load)
        self._maybe_reload(loaded)
        keys, known, missing = _lookup(loaded, texts)
        if missing:
            loop = asyncio.get_running_loop()
            job = _Job(loaded, list(missing.values()), loop, loop.create_future())
            self._submit(job)
            try:
                found = await asyncio.wait_for(job.future, loaded.policy.detectors.timeout_seconds)
            except TimeoutError:
                message = f"detection timed out after {loaded.policy.detectors.timeout_seconds:g} s"
                return [failed_verdict(loaded.policy, message) for _ in texts]
            except Exception as exc:
                return [failed_verdict(loaded.policy, _describe(exc)) for _ in texts]
            known.update(_store(loaded, missing, found))
        return [decide(known[key], loaded.policy, role) for key in keys]

    # -- the worker ------------------------------------------------------------------------

    def _submit(self, job: _Job) -> None:
        if self._worker is None or not self._worker.is_alive():
            with self._load_lock:
                if self._worker is None or not self._worker.is_alive():
                    self._worker = threading.Thread(target=self._work, name="safety-filter-detect", daemon=True)
                    self._worker.start()
        self._jobs.put(job)

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            batch = [job]
            size = len(job.texts)
            limit = job.loaded.policy.detectors.batch_size
            while size < limit:
                try:
                    more = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._jobs.put(None)
                    break
                batch.append(more)
                size += len(more.texts)
            self._run(batch)

    def _run(self, batch: list[_Job]) -> None:
        groups: dict[int, list[_Job]] = {}
        for job in batch:
            groups.setdefault(id(job.loaded), []).append(job)
        for jobs in groups.values():
            texts = [text for job in jobs for text in job.texts]
            try:
                found = jobs[0].loaded.detect(texts)
            except Exception:
                if len(jobs) > 1:  # isolate the job that fails so it can't fail the others
                    for job in jobs:
                        self._run([job])
                    continue
                log.exception("detection failed")
                _resolve(jobs[0], exception=RuntimeError("a detector failed"))
                continue
            start = 0
            for job in jobs:
                _resolve(job, result=found[start : start + len(job.texts)])
                start += len(job.texts)

    def close(self) -> None:
        """Stop the worker thread (pending checks finish first)."""
        if self._worker is not None and self._worker.is_alive():
            self._jobs.put(None)
            self._worker.join(timeout=5)


def _lookup(loaded: _Loaded, texts: Sequence[str]) -> tuple[list[bytes], dict[bytes, Findings], dict[bytes, str]]:
    """Split `texts` into cached findings and the distinct texts still to detect."""
    keys = [loaded.cache.key(text) for text in texts]
    known: dict[bytes, Findings] = {}
    missing: dict[bytes, str] = {}
    for key, text in zip(keys, texts, strict=True):
        if key in known or key in missing:
            continue
        cached = loaded.cache.get(key)
        if cached is None:
            missing[key] = text
        else:
            known[key] = cached
    return keys, known, missing


def _store(loaded: _Loaded, missing: dict[bytes, str], found: list[Findings]) -> dict[bytes, Findings]:
    fresh = dict(zip(missing, found, strict=True))
    for key, findings in fresh.items():
        loaded.cache.put(key, findings)
    return fresh


def _warm(detectors: Iterable[Detector]) -> None:
    for detector in detectors:
        warm_up = getattr(detector, "warm_up", None)
        if warm_up is not None:
            warm_up()


def _resolve(job: _Job, *, result: list[Findings] | None = None, exception: BaseException | None = None) -> None:
    def settle() -> None:
        if job.future.done():  # the request timed out or went away
            return
        if exception is not None:
            job.future.set_exception(exception)
        else:
            job.future.set_result(result or [])

    try:
        job.loop.call_soon_threadsafe(settle)
    except RuntimeError:  # the loop is closed: nobody is waiting
        pass


def _describe(exc: BaseException) -> str:
    return f"content could not be inspected: {exc}"


def _identity(detector: Detector, policy: Policy) -> tuple[str, str]:
    settings = getattr(policy.detectors, detector.name, None)
    return detector.name, settings.model_dump_json() if settings is not None else ""


def _changed(detector: Detector, previous: _Loaded | None) -> bool:
    watched = getattr(detector, "watched_paths", None)
    if previous is None or watched is None:
        return False
    paths = list(watched())
    return _mtimes(paths) != {p: previous.watched.get(p, -1.0) for p in paths}


def _mtimes(paths: Sequence[Path] | dict[Path, float]) -> dict[Path, float]:
    stamps = {}
    for path in paths:
        try:
            stamps[path] = path.stat().st_mtime
        except OSError:
            stamps[path] = -1.0
    return stamps
