"""The engine: the one place where texts become verdicts.

The middleware, the proxy, the CLI (`scan`, `eval`) and the benchmarks all call `Engine.check`
or `Engine.check_sync`; there is no second code path.

- Detection runs in ONE worker thread (`worker.py`), never on the event loop. Texts from
  concurrent requests that arrive while the worker is busy are scored together; the queue is
  bounded (`Overloaded` past it) and checks nobody waits for any more are dropped.
- Findings are cached by text hash, so chat history re-sent every turn is not re-scored.
- A detector that raises or times out never lets text through unseen: the text gets the
  policy's fail-mode verdict (`closed` blocks, `open` allows with an error annotation).
- Policy and list files are watched by a background thread (started by the first async check or
  by `aload`, stopped by `close`); a change is loaded and swapped in atomically. Success and
  failure are logged with the versions; a change that fails to load leaves the last good
  version active, and `status()` reports both.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from safety_filter import metrics
from safety_filter.detectors import base, build_detectors
from safety_filter.detectors.base import Detector
from safety_filter.findings import Finding, Verdict
from safety_filter.lru import LRUCache
from safety_filter.policy import Policy, Role, decide, failed_verdict, load_policy
from safety_filter.worker import Job, Worker

log = logging.getLogger("safety_filter.engine")

Findings = tuple[Finding, ...]
Stamp = tuple[int, int] | None  # (mtime in ns, size) of a watched path; None: it is gone


class _FindingsCache(LRUCache[bytes, Findings]):
    """Findings by text hash."""

    @staticmethod
    def key(text: str) -> bytes:
        return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


@dataclass
class _Loaded:
    """A policy with its loaded detectors and their cache: swapped as one on reload."""

    policy: Policy
    detectors: list[Detector]
    cache: _FindingsCache
    watched: dict[Path, Stamp] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def detect(self, texts: Sequence[str]) -> list[Findings]:
        """Run every detector over `texts`, in order, each told what the earlier ones found
        (the caller handles exceptions)."""
        merged: list[list[Finding]] = [[] for _ in texts]
        collectors = metrics.current()
        collectors.batch_texts.observe(len(texts))
        with self.lock, collectors.detection_seconds.time():
            for detector in self.detectors:
                results = base.detect_after(detector, texts, merged)
                if len(results) != len(texts):
                    raise RuntimeError(f"detector {detector.name!r} gave {len(results)} results for {len(texts)} texts")
                for bucket, found in zip(merged, results, strict=True):
                    bucket.extend(found)
        return [tuple(bucket) for bucket in merged]


class Engine:
    """Checks texts against a policy. Build with `Engine.from_policy_file` or `Engine(policy)`.

    `detectors` replaces the ones the policy would build (tests, benchmarks, embedding code);
    `extra_blocklists` adds rule lists to every version of the policy (the CLI's `--blocklist`),
    so a policy file given with them is still reloaded.
    """

    def __init__(
        self,
        policy: Policy | None = None,
        detectors: Sequence[Detector] | None = None,
        *,
        policy_path: str | Path | None = None,
        extra_blocklists: Sequence[str | Path] = (),
    ) -> None:
        self._policy_path = Path(policy_path) if policy_path is not None else None
        self._extra_blocklists = tuple(str(Path(p).resolve()) for p in extra_blocklists)
        self._given_detectors = list(detectors) if detectors is not None else None
        self._initial_policy = policy
        self._loaded: _Loaded | None = None
        self._load_lock = threading.Lock()
        self._worker = Worker()
        self._watcher: threading.Thread | None = None
        self._stop = threading.Event()
        self._last_reload: dict[str, object] | None = None
        self._warm = False
        self._warm_lock = threading.Lock()

    @classmethod
    def from_policy_file(cls, path: str | Path | None = None, *, extra_blocklists: Sequence[str | Path] = ()) -> Engine:
        """An engine for the policy at `path` (the shipped default when None), reloaded on change.

        The file is read and validated now (raising `PolicyError`); no detector loads yet.
        """
        return cls(load_policy(path), policy_path=path, extra_blocklists=extra_blocklists)

    # -- loading ---------------------------------------------------------------------------

    @property
    def policy(self) -> Policy:
        """The active policy. Before `load`, the configured one: read, validated, no model loaded."""
        return self._loaded.policy if self._loaded is not None else self._configured()

    @property
    def detectors(self) -> list[Detector]:
        return list(self.load().detectors)

    @property
    def loaded(self) -> bool:
        return self._loaded is not None

    def versions(self) -> dict[str, str]:
        """Each loaded detector's version (list content hash, model digest) for the audit trail."""
        return _versions(self.load())

    def status(self) -> dict[str, object]:
        """What is active and how the last reload went (for `/safety-filter/health`); loads nothing."""
        loaded = self._loaded
        detectors = _versions(loaded) if loaded is not None else {}
        return {"policy": self.policy.label, "detectors": detectors, "last_reload": self._last_reload}

    def _read_policy(self) -> Policy:
        return self._with_extras(load_policy(self._policy_path))

    def _configured(self) -> Policy:
        if self._initial_policy is None:
            self._initial_policy = load_policy(self._policy_path)
        return self._with_extras(self._initial_policy)

    def _with_extras(self, policy: Policy) -> Policy:
        if not self._extra_blocklists:
            return policy
        rules = policy.detectors.rules
        rules = rules.model_copy(update={"enabled": True, "blocklists": (*rules.blocklists, *self._extra_blocklists)})
        return policy.model_copy(update={"detectors": policy.detectors.model_copy(update={"rules": rules})})

    def load(self) -> _Loaded:
        """Load the policy's detectors once (idempotent, thread-safe). Raises if they can't load."""
        if self._loaded is None:
            with self._load_lock:
                if self._loaded is None:
                    self._loaded = self._build(self._configured(), previous=None)
        return self._loaded

    async def aload(self) -> None:
        """Load, warm up and start watching files, off the event loop (ASGI lifespan start-up)."""
        await asyncio.to_thread(self.warm_up)
        self.watch()

    def warm_up(self) -> None:
        """`load`, then let detectors do their optional slow start-up work (`warm_up()`) now.

        A server wants its first requests fast; a one-shot command does not need this.
        Idempotent: concurrent callers wait for the one warm-up.
        """
        with self._warm_lock:
            if not self._warm:
                _warm(self.load().detectors)
                self._warm = True

    def _build(self, policy: Policy, previous: _Loaded | None) -> _Loaded:
        given = self._given_detectors
        detectors = given if given is not None else build_detectors(policy)
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
        loaded.watched = _stamps(self._watched_paths(loaded))
        return loaded

    def _watched_paths(self, loaded: _Loaded) -> list[Path]:
        paths = [self._policy_path] if self._policy_path is not None else []
        for detector in loaded.detectors:
            paths.extend(base.watched_paths(detector))
        return paths

    # -- hot reload ------------------------------------------------------------------------

    def reload(self) -> bool:
        """Re-read the policy and lists now. Returns False (keeping the last good state) on error."""
        current = self.load()
        when = datetime.now(UTC).isoformat(timespec="seconds")
        # Stamped before reading: a file rewritten while it is read (an editor truncates, then
        # writes) differs from this stamp afterwards, so the next poll reads it again.
        before = _stamps(current.watched)
        try:
            policy = self._read_policy() if self._policy_path is not None else current.policy
            replacement = self._build(policy, previous=current)
            if self._warm:
                _warm(d for d in replacement.detectors if d not in current.detectors)
        except Exception as exc:
            log.error("reload failed at %s, keeping policy %s and detectors %s: %s",
                      when, current.policy.label, _versions(current), exc)
            self._last_reload = {"time": when, "ok": False, "error": str(exc)}
            metrics.current().reloads.labels("failed").inc()
            current.watched = before  # don't retry until the files change again
            return False
        replacement.watched.update((p, stamp) for p, stamp in before.items() if p in replacement.watched)
        self._loaded = replacement
        versions = _versions(replacement)
        log.info("reloaded at %s: policy %s, detectors %s", when, replacement.policy.label, versions)
        self._last_reload = {"time": when, "ok": True, "error": None}
        metrics.current().reloads.labels("ok").inc()
        return True

    def changed(self) -> bool:
        """Whether a watched policy or list file (or list folder) changed since the last load."""
        loaded = self.load()
        return _stamps(loaded.watched) != loaded.watched

    def watch(self) -> None:
        """Start the background thread that reloads changed files (idempotent; `close` stops it).

        The thread holds the engine weakly, so an engine dropped without `close` stops it too.
        """
        if self._watcher is not None or self._stop.is_set() or self.policy.reload_interval_seconds <= 0:
            return
        with self._load_lock:
            if self._watcher is None:
                self._watcher = threading.Thread(
                    target=_watch, args=(weakref.ref(self), self._stop), name="safety-filter-watch", daemon=True
                )
                self._watcher.start()

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
        """Verdicts for `texts`, detected in the engine's worker thread, batched with others.

        A detector that fails or times out gives the fail-mode verdict. Raises `Overloaded` at
        once (with `retry_after` in seconds) when more than `detectors.max_queued_chars` wait
        to be scored, or when, at the measured scoring rate, this check would not be done within
        `detectors.timeout_seconds`: the caller answers 503 rather than queueing work that would
        time out.
        """
        if not self._warm:  # start-up work is not detection: keep it out of the timeout
            await asyncio.to_thread(self.warm_up)
        loaded = self.load()
        self.watch()
        keys, known, missing = _lookup(loaded, texts)
        if missing:
            settings = loaded.policy.detectors
            loop = asyncio.get_running_loop()
            job = Job(loaded, list(missing.values()), loop, loop.create_future(),
                      piece_chars=settings.piece_chars, batch_size=settings.batch_size)
            self._worker.submit(job, settings.max_queued_chars, settings.timeout_seconds)
            try:
                found = await asyncio.wait_for(job.future, settings.timeout_seconds)
            except TimeoutError:
                message = f"detection timed out after {settings.timeout_seconds:g} s"
                return [failed_verdict(loaded.policy, message) for _ in texts]
            except Exception as exc:
                return [failed_verdict(loaded.policy, _describe(exc)) for _ in texts]
            known.update(_store(loaded, missing, found))
        return [decide(known[key], loaded.policy, role) for key in keys]

    def close(self) -> None:
        """Stop the watcher and the worker thread (checks still waited for finish first)."""
        self._stop.set()
        if self._watcher is not None and self._watcher is not threading.current_thread():
            self._watcher.join(timeout=5)
        self._worker.close()


def _watch(ref: weakref.ref[Engine], stop: threading.Event) -> None:
    """Every `reload_interval_seconds`, reload the engine if a watched file changed."""
    while (engine := ref()) is not None:
        interval = engine.policy.reload_interval_seconds
        del engine  # hold no strong reference while waiting
        if interval <= 0 or stop.wait(interval):  # a reloaded policy may turn reloading off
            return
        engine = ref()
        if engine is not None and engine.changed():
            engine.reload()
        del engine


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
        base.warm_up(detector)


def _describe(exc: BaseException) -> str:
    return f"content could not be inspected: {exc}"


def _identity(detector: Detector, policy: Policy) -> tuple[str, str]:
    settings = getattr(policy.detectors, detector.name, None)
    return detector.name, settings.model_dump_json() if settings is not None else ""


def _changed(detector: Detector, previous: _Loaded | None) -> bool:
    if previous is None:
        return False
    paths = base.watched_paths(detector)
    return _stamps(paths) != {p: previous.watched.get(p) for p in paths}


def _versions(loaded: _Loaded) -> dict[str, str]:
    return {d.name: base.version(d) for d in loaded.detectors}


def _stamps(paths: Iterable[Path]) -> dict[Path, Stamp]:
    stamps: dict[Path, Stamp] = {}
    for path in paths:
        try:
            stat = path.stat()
        except OSError:
            stamps[path] = None
        else:
            stamps[path] = (stat.st_mtime_ns, stat.st_size)
    return stamps
