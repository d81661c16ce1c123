"""Start-up and shutdown as a new user meets them: a misconfigured filter stops the server with the
message (and answers nothing uninspected), nothing loads in the constructor or on the event loop,
and the lifespan shutdown closes the engine and the audit log."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from safety_filter import Engine, SafetyFilterMiddleware
from safety_filter.audit import AuditLog

from .helpers import ChatApp, FakeDetector, chat_request, free_port, make_policy

pytestmark = pytest.mark.slow  # real servers or real models

ROOT = Path(__file__).resolve().parents[1]


def starlette_app(**middleware: object) -> Starlette:
    """The README's `app.add_middleware(SafetyFilterMiddleware, ...)` on a one-route app."""
    app = Starlette(routes=[Route("/docs", lambda request: PlainTextResponse("the docs"))])
    app.add_middleware(SafetyFilterMiddleware, **middleware)  # type: ignore[arg-type]
    return app


async def lifespan(app: object, *events: str) -> list[dict[str, object]]:
    """Drive an ASGI lifespan: send `events` in turn, return what the app answered."""
    incoming: asyncio.Queue[dict[str, object]] = asyncio.Queue()
    answers: list[dict[str, object]] = []
    for event in events:
        incoming.put_nowait({"type": f"lifespan.{event}"})

    async def send(message: dict[str, object]) -> None:
        answers.append(message)

    await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, incoming.get, send)  # type: ignore[operator]
    return answers


class ThreadRecordingDetector(FakeDetector):
    version = "fake-1"

    def __init__(self) -> None:
        super().__init__()
        self.load_threads: list[threading.Thread] = []

    def load(self) -> None:
        self.load_threads.append(threading.current_thread())
        super().load()


def test_a_missing_policy_stops_uvicorn_with_the_message(tmp_path: Path) -> None:
    code = textwrap.dedent(f"""
        import uvicorn
        from tests.test_startup import starlette_app
        uvicorn.run(starlette_app(policy={str(tmp_path / "policy.yaml")!r}), host="127.0.0.1", port={free_port()})
    """)  # uvicorn's default lifespan="auto", as most apps run it
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env, check=False)
    assert proc.returncode != 0
    assert f"policy file {tmp_path / 'policy.yaml'}: cannot read it" in proc.stderr
    assert "Application startup failed" in proc.stderr
    assert "Uvicorn running" not in proc.stderr


@pytest.mark.anyio
async def test_the_lifespan_start_up_fails_with_the_message(tmp_path: Path) -> None:
    answers = await lifespan(starlette_app(policy=tmp_path / "missing.yaml"), "startup")
    assert answers[-1]["type"] == "lifespan.startup.failed"
    assert "missing.yaml: cannot read it" in str(answers[-1]["message"])
    rules = {"blocklists": [str(tmp_path / "gone.txt")]}
    bad_list = make_policy(detectors={"rules": rules, "classifier": {"enabled": False}, "ncii": {"enabled": False}})
    answers = await lifespan(starlette_app(policy=bad_list), "startup")  # a list that can't load fails it too
    assert answers[-1]["type"] == "lifespan.startup.failed" and "gone.txt" in str(answers[-1]["message"])


@pytest.mark.anyio
async def test_without_lifespan_every_request_gets_a_clear_500(tmp_path: Path) -> None:
    app = starlette_app(policy=tmp_path / "missing.yaml")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        for response in (await client.get("/docs"), await client.post("/v1/chat/completions", json=chat_request("hi"))):
            assert response.status_code == 500
            error = response.json()["error"]
            assert error["code"] == "content_filter_misconfigured" and "missing.yaml" in error["message"]
            assert response.headers["x-safety-filter-action"] == "error"
            assert "the docs" not in response.text


@pytest.mark.anyio
async def test_nothing_loads_in_the_constructor_nor_on_the_event_loop() -> None:
    detector = ThreadRecordingDetector()
    app = SafetyFilterMiddleware(ChatApp(), engine=Engine(make_policy(), [detector]), audit=AuditLog(None))
    assert detector.loaded == 0 and not app.engine.loaded
    loop_thread = threading.current_thread()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        first = await client.post("/v1/chat/completions", json=chat_request("hello"))  # no lifespan: loads now
    assert first.status_code == 200
    assert detector.load_threads and all(t is not loop_thread for t in detector.load_threads)
    app.engine.close()

    detector = ThreadRecordingDetector()
    app = SafetyFilterMiddleware(ChatApp(), engine=Engine(make_policy(), [detector]), audit=AuditLog(None))
    answers = await lifespan(app, "startup", "shutdown")
    assert [a["type"] for a in answers] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert detector.loaded == 1 and detector.load_threads[0] is not loop_thread
    app.engine.close()


@pytest.mark.anyio
async def test_the_lifespan_shutdown_closes_the_engine_and_the_audit_log(tmp_path: Path) -> None:
    sink = tmp_path / "audit.jsonl"
    policy = make_policy(audit={"sink": str(sink)})
    app = starlette_app(policy=policy)
    inner: SafetyFilterMiddleware = app.build_middleware_stack().app  # type: ignore[attr-defined]
    assert isinstance(inner, SafetyFilterMiddleware)

    def running() -> int:
        return sum(t.name in ("safety-filter-watch", "safety-filter-detect") for t in threading.enumerate())

    before = running()
    incoming: asyncio.Queue[dict[str, object]] = asyncio.Queue()
    answers: list[dict[str, object]] = []

    async def send(message: dict[str, object]) -> None:
        answers.append(message)

    incoming.put_nowait({"type": "lifespan.startup"})
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    served = asyncio.create_task(inner(scope, incoming.get, send))
    while not answers:
        await asyncio.sleep(0.01)
    assert answers[0]["type"] == "lifespan.startup.complete" and inner.engine.loaded
    assert (await inner.engine.check(["hello"], "prompt"))[0].error is None
    assert running() == before + 2 and inner.audit.enabled
    incoming.put_nowait({"type": "lifespan.shutdown"})
    await served
    assert answers[-1]["type"] == "lifespan.shutdown.complete"
    assert running() == before and not inner.audit.enabled


def test_serve_with_two_workers_serves_and_filters(tmp_path: Path) -> None:
    terms = tmp_path / "terms.txt"
    terms.write_text("#: category: hate\n#: score: 1.0\nzzquux\n")  # an invented term: no real list needed
    policy = tmp_path / "policy.yaml"
    data = json.loads(json.dumps(make_policy().model_dump(mode="json")))
    data["detectors"]["classifier"]["enabled"] = False
    data["detectors"]["ncii"]["enabled"] = False
    data["detectors"]["rules"]["blocklists"] = [str(terms)]
    policy.write_text(json.dumps(data))  # JSON is YAML
    port = free_port()
    code = textwrap.dedent(f"""
        from safety_filter.serve.app import ServeOptions, run_server
        run_server(ServeOptions(policy={str(policy)!r}), host="127.0.0.1", port={port}, workers=2)
    """)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stderr=subprocess.PIPE, text=True, env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                if httpx.get(f"{base}/safety-filter/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            threading.Event().wait(0.1)
        with httpx.Client(base_url=base) as client:
            texts = ["demo: allowed", "say: zzquux"] * 4
            answers = [client.post("/v1/chat/completions", json=chat_request(text)) for text in texts]
        assert [a.status_code for a in answers] == [200, 400] * 4
        assert answers[1].json()["error"]["code"] == "content_filter"
    finally:
        proc.terminate()
        _, stderr = proc.communicate()
    assert stderr.count("Started server process") == 2  # two processes, each with its own engine


def test_metrics_go_to_the_registry_given() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from safety_filter import metrics

    previous = metrics.current().registry
    registry = CollectorRegistry()
    try:
        metrics.use(registry)
        engine = Engine(make_policy(), [FakeDetector()])
        metrics.record("prompt", engine.check_sync(["zzhate"], "prompt")[0])
        exposed = generate_latest(registry).decode()
        assert 'safety_filter_verdicts_total{action="block",role="prompt"} 1.0' in exposed
        assert "safety_filter_batch_texts_count 1.0" in exposed
        assert "zzhate" not in exposed
    finally:
        metrics.use(previous)
    assert metrics.current().registry is previous
