"""Hot reload, as a security team uses it: edits are picked up with no traffic, every reload is
logged with its versions, deletion has a defined meaning, and the last good version survives a
bad edit. Rule lists here hold invented marker words (no harmful text is needed)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from safety_filter import Engine, SafetyFilterMiddleware
from safety_filter.findings import Action
from safety_filter.policy import load_policy

from .helpers import ChatApp, FakeDetector, chat_request, make_policy
from .test_engine import policy_text


async def eventually(condition: Callable[[], bool], within: float = 30.0) -> None:
    """Wait for the background watcher to act (generous, so a loaded machine can't fail it)."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "the watcher did not act"
        await asyncio.sleep(0.02)


def rules_only(tmp_path: Path, *blocklists: str | Path, **top: object) -> Path:
    """A policy file with only the rules detector, over `blocklists`, reloaded every 20 ms."""
    import yaml

    data = yaml.safe_load(policy_text({"threshold": 0.5, "action": "block"}, reload_interval_seconds=0.02, **top))
    data["detectors"]["classifier"]["enabled"] = False
    data["detectors"]["ncii"]["enabled"] = False
    data["detectors"]["rules"]["blocklists"] = [str(b) for b in blocklists]
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def write_list(path: Path, *terms: str) -> Path:
    path.write_text("#: category: hate\n#: score: 1.0\n" + "".join(f"{t}\n" for t in terms))
    return path


def blocked(engine: Engine, text: str) -> bool:
    return engine.check_sync([text], "prompt")[0].action is Action.BLOCK


@pytest.mark.anyio
async def test_an_edited_list_is_active_before_any_request(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    lists = tmp_path / "lists"
    lists.mkdir()
    first = write_list(lists / "a.txt", "zzquux")
    engine = Engine.from_policy_file(rules_only(tmp_path, lists))
    await engine.aload()  # what the lifespan start-up does: load, then watch
    before = engine.versions()["rules"]
    caplog.set_level(logging.INFO, logger="safety_filter.engine")
    write_list(first, "zzquux", "zzfrob")
    await eventually(lambda: engine.status()["detectors"]["rules"] != before)  # no check was made
    assert blocked(engine, "say zzfrob now")
    status = engine.status()
    assert status["last_reload"]["ok"] is True and status["last_reload"]["time"]  # type: ignore[index]
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("reloaded at ")]
    assert logged and engine.versions()["rules"] in logged[-1] and engine.policy.label in logged[-1]
    engine.close()


@pytest.mark.anyio
async def test_a_file_deleted_from_a_list_folder_takes_its_terms_with_it(tmp_path: Path) -> None:
    lists = tmp_path / "lists"
    lists.mkdir()
    write_list(lists / "kept.txt", "zzquux")
    gone = write_list(lists / "gone.txt", "zzfrob")
    engine = Engine.from_policy_file(rules_only(tmp_path, lists))
    await engine.aload()
    assert blocked(engine, "zzfrob") and blocked(engine, "zzquux")
    gone.unlink()
    await eventually(lambda: not blocked(engine, "zzfrob"))
    assert blocked(engine, "zzquux")
    assert engine.status()["last_reload"]["ok"] is True  # type: ignore[index]
    engine.close()


@pytest.mark.anyio
async def test_a_named_list_that_disappears_is_a_failed_reload_that_keeps_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    named = write_list(tmp_path / "named.txt", "zzfrob")
    engine = Engine.from_policy_file(rules_only(tmp_path, named))
    await engine.aload()
    caplog.set_level(logging.INFO, logger="safety_filter.engine")
    named.unlink()
    await eventually(lambda: engine.status()["last_reload"] is not None)
    status = engine.status()
    assert status["last_reload"]["ok"] is False and "named.txt" in status["last_reload"]["error"]  # type: ignore[index]
    assert any(r.levelno == logging.ERROR and "reload failed at" in r.getMessage() for r in caplog.records)
    assert blocked(engine, "zzfrob")  # the last good version stays until the policy stops naming it
    write_list(named, "zzquux")  # restored: picked up again
    await eventually(lambda: engine.status()["last_reload"]["ok"] is True)  # type: ignore[index]
    assert blocked(engine, "zzquux") and not blocked(engine, "zzfrob")
    engine.close()


@pytest.mark.anyio
async def test_a_broken_policy_edit_keeps_the_last_good_policy(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(policy_text({"threshold": 0.6, "action": "annotate"}, reload_interval_seconds=0.02))
    engine = Engine(load_policy(path), [FakeDetector()], policy_path=path)
    await engine.aload()
    label = engine.policy.label
    path.write_text("fail_mode: [broken")
    await eventually(lambda: engine.status()["last_reload"] is not None)
    assert engine.status()["last_reload"]["ok"] is False  # type: ignore[index]
    assert engine.policy.label == label
    assert (await engine.check(["zzsex"], "prompt"))[0].action is Action.ANNOTATE
    engine.close()


@pytest.mark.anyio
async def test_extra_blocklists_survive_a_policy_reload(tmp_path: Path) -> None:
    lists = tmp_path / "lists"
    lists.mkdir()
    write_list(lists / "a.txt", "zzquux")
    extra = write_list(tmp_path / "extra.txt", "zzfrob")
    policy = rules_only(tmp_path, lists)
    engine = Engine.from_policy_file(policy, extra_blocklists=[extra])
    await engine.aload()
    assert blocked(engine, "zzfrob")
    label = engine.policy.label
    policy.write_text(policy.read_text().replace("fail_mode: closed", "fail_mode: open"))
    await eventually(lambda: engine.policy.label != label)  # the policy file is still watched
    assert engine.policy.fail_mode == "open"
    assert blocked(engine, "zzfrob")  # and the extra list is still loaded
    engine.close()


def test_serve_with_blocklist_reloads_the_policy_and_watches_the_extra_list(tmp_path: Path) -> None:
    """`serve --blocklist FILE` (ServeOptions.blocklists): the policy file and FILE both reload."""
    from safety_filter.serve.app import ServeOptions, build_app

    lists = tmp_path / "lists"
    lists.mkdir()
    write_list(lists / "a.txt", "zzquux")
    extra = write_list(tmp_path / "extra.txt", "zzfrob")
    policy = rules_only(tmp_path, lists)
    engine = build_app(ServeOptions(policy=str(policy), blocklists=(str(extra),))).filtered.engine
    assert blocked(engine, "zzfrob") and not blocked(engine, "zzbarf")
    write_list(extra, "zzfrob", "zzbarf")
    assert engine.changed()  # the extra list is watched
    assert engine.reload() and blocked(engine, "zzbarf")
    policy.write_text(policy.read_text().replace("fail_mode: closed", "fail_mode: open"))
    assert engine.changed()  # and so is the policy file
    assert engine.reload()
    assert engine.policy.fail_mode == "open"
    assert blocked(engine, "zzfrob") and blocked(engine, "zzbarf") and blocked(engine, "zzquux")
    engine.close()


@pytest.mark.anyio
async def test_audit_settings_follow_a_policy_reload(tmp_path: Path) -> None:
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    path = tmp_path / "policy.yaml"
    rule = {"threshold": 0.5, "action": "block"}
    path.write_text(policy_text(rule, reload_interval_seconds=0, audit={"sink": str(first)}))
    engine = Engine(load_policy(path), [FakeDetector()], policy_path=path)
    filtered = SafetyFilterMiddleware(ChatApp(), engine=engine)  # the audit log comes from the policy
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=filtered), base_url="http://test") as http:
        assert (await http.post("/v1/chat/completions", json=chat_request("say zzhate once"))).status_code == 400
        audit = {"sink": str(second), "include_excerpts": True, "redact": False}
        path.write_text(policy_text(rule, reload_interval_seconds=0, audit=audit))
        assert engine.reload()
        assert (await http.post("/v1/chat/completions", json=chat_request("say zzhate twice"))).status_code == 400
    filtered.close()
    engine.close()
    before = [json.loads(line) for line in first.read_text().splitlines()]
    after = [json.loads(line) for line in second.read_text().splitlines()]
    assert len(before) == 1 and "excerpts" not in before[0]  # the first policy's sink, no excerpts
    assert [line["excerpts"] for line in after] == [["say zzhate twice"]]  # the reloaded policy's
    assert after[0]["excerpts_redacted"] is False


def test_close_stops_the_watcher_and_the_worker() -> None:
    import threading

    def running() -> int:
        return sum(t.name in ("safety-filter-watch", "safety-filter-detect") for t in threading.enumerate())

    engine = Engine(make_policy(), [FakeDetector()])
    before = running()

    async def serve_one() -> None:
        await engine.aload()
        await engine.check(["hello"], "prompt")

    asyncio.run(serve_one())
    assert running() == before + 2
    engine.close()
    assert running() == before
