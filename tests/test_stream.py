"""The SSE parser and the stream guard, driven directly (no HTTP)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from safety_filter import Engine
from safety_filter.asgi.stream import SSEParser, StreamGuard, event_data
from safety_filter.policy import StreamingSettings

from .helpers import FakeDetector, make_policy

pytestmark = pytest.mark.anyio


def chunk(text: str, index: int = 0) -> bytes:
    body = {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": index, "delta": {"content": text}}],
    }
    return f"data: {json.dumps(body)}\n\n".encode()


def guard(**streaming: int) -> StreamGuard:
    engine = Engine(make_policy(), [FakeDetector()])

    async def check(texts: list[str]):  # type: ignore[no-untyped-def]
        return await engine.check(texts, "completion")

    return StreamGuard(check, StreamingSettings(**streaming))


@given(st.lists(st.binary(max_size=40), max_size=20), st.sampled_from([b"\n\n", b"\r\n\r\n", b"\r\r"]))
def test_parser_returns_every_byte_exactly_once(pieces: list[bytes], separator: bytes) -> None:
    stream = separator.join(b"data: " + p.replace(b"\r", b"").replace(b"\n", b"") for p in pieces) + separator
    parser = SSEParser()
    out = []
    for start in range(0, len(stream), 7):
        out.extend(parser.feed(stream[start : start + 7]))
    assert b"".join(out) + parser.flush() == stream


def test_event_data_joins_multiline_data() -> None:
    assert event_data(b"event: x\ndata: a\ndata:b\n\n") == "a\nb"
    assert event_data(b": comment\n\n") is None


async def test_allowed_events_come_out_unchanged_and_in_order() -> None:
    g = guard(check_every_chars=10, holdback_chars=5)
    events = [chunk(w) for w in ["the", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog"]]
    events.insert(3, b": keep-alive comment\n\n")
    out = b""
    for event in events:
        out += await g.feed(event)
    out += await g.finish()
    assert out == b"".join(events)


async def test_nothing_is_released_before_it_is_checked() -> None:
    g = guard(check_every_chars=1000, holdback_chars=0)
    assert await g.feed(chunk("hello ")) == b""
    assert await g.finish() == chunk("hello ")


def emitted(out: bytes) -> str:
    """The completion text carried by the released events."""
    return "".join(
        json.loads(e[6:])["choices"][0].get("delta", {}).get("content", "") or ""
        for e in out.decode().split("\n\n")
        if e.startswith("data: {")
    )


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=0, max_value=120), st.integers(min_value=1, max_value=9))
async def test_a_phrase_split_anywhere_never_leaks(position: int, piece: int) -> None:
    text = ("benign words " * 10)[:position] + "zzhate" + " and then more benign words"
    g = guard(check_every_chars=16, holdback_chars=8)
    out = b""
    for start in range(0, len(text), piece):
        out += await g.feed(chunk(text[start : start + piece]))
    out += await g.finish()
    emitted = "".join(
        json.loads(e[6:])["choices"][0].get("delta", {}).get("content", "")
        for e in out.decode().split("\n\n")
        if e.startswith("data: {")
    )
    assert "zzh" not in emitted
    assert g.blocked is not None
    assert out.endswith(b"data: [DONE]\n\n")


def recording_guard(**streaming: int) -> tuple[StreamGuard, list[str]]:
    engine = Engine(make_policy(), [FakeDetector()])
    seen: list[str] = []

    async def check(texts: list[str]):  # type: ignore[no-untyped-def]
        seen.extend(texts)
        return await engine.check(texts, "completion")

    return StreamGuard(check, StreamingSettings(**streaming)), seen


async def test_each_sentence_is_checked_once_it_ends_and_whole() -> None:
    sentences = [f"Sentence number {i} says something about the weather and the sea." for i in range(12)]
    text = " ".join(sentences)
    g, seen = recording_guard()  # the shipped settings: 64 chars, then a sentence end
    out = b""
    for start in range(0, len(text), 4):
        out += await g.feed(chunk(text[start : start + 4]))
        checked = text.index(seen[-1]) + len(seen[-1]) if seen else 0
        assert len(emitted(out)) <= max(0, checked - 96)  # the holdback still applies
    mid_stream = len(seen)
    out += await g.finish()
    assert emitted(out) == text
    assert all(t.endswith(".") for t in seen[:mid_stream])  # checks stop at sentence ends
    assert all(any(sentence in t for t in seen) for sentence in sentences)  # each read whole
    assert len(seen) <= len(sentences)  # not once per 64 characters (16 checks)


async def test_text_without_sentence_ends_is_checked_after_sentence_wait_chars() -> None:
    text = "words without any full stop " * 12 + "zzhate " + "and more words " * 30
    g, seen = recording_guard(sentence_wait_chars=200)
    out = b""
    for start in range(0, len(text), 4):
        out += await g.feed(chunk(text[start : start + 4]))
        if start == 200:
            assert seen and emitted(out)  # checked and partly released before any sentence ended
    assert g.blocked is not None  # cut mid-stream, not at the end
    assert "zzh" not in emitted(out) and len(seen) >= 2


async def test_unparseable_event_data_is_inspected_as_text() -> None:
    g = guard(check_every_chars=1, holdback_chars=0)
    out = await g.feed(b"data: not json zzhate\n\n")
    assert b"zzhate" not in out and g.blocked is not None


async def test_choices_are_tracked_separately() -> None:
    g = guard(check_every_chars=4, holdback_chars=0, sentence_wait_chars=0)
    out = await g.feed(chunk("fine text", 0) + chunk("zzh", 1))
    out += await g.feed(chunk("ate", 1))
    assert b"zzh" not in out
    final = json.loads(out.decode().split("\n\n")[-3][6:])
    assert final["choices"][0]["index"] == 1 and final["choices"][0]["finish_reason"] == "content_filter"


async def test_an_uninspectable_event_ends_the_stream_when_fail_closed() -> None:
    from safety_filter.asgi.middleware import SafetyFilterMiddleware

    huge = b"data: " + b"x" * (2 << 20)  # no event end in sight: larger than the parser accepts

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        await send({"type": "http.response.body", "body": chunk("hello"), "more_body": True})
        await send({"type": "http.response.body", "body": huge, "more_body": True})
        await send({"type": "http.response.body", "body": b"\n\n", "more_body": False})

    import httpx

    from safety_filter.audit import AuditLog

    for mode, expect_cut in (("closed", True), ("open", False)):
        engine = Engine(make_policy(fail_mode=mode), [FakeDetector()])
        filtered = SafetyFilterMiddleware(app, engine=engine, audit=AuditLog(None))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=filtered), base_url="http://t") as http:
            response = await http.post("/v1/chat/completions", json={"messages": [], "stream": True})
        if expect_cut:
            assert b"xxxx" not in response.content
            assert b'"finish_reason":"content_filter"' in response.content
            assert response.content.endswith(b"data: [DONE]\n\n")
        else:
            assert response.content.startswith(chunk("hello")) and len(response.content) > (2 << 20)


@settings(max_examples=60, deadline=None)
@given(
    st.text(alphabet=st.characters(codec="utf-8", exclude_characters="z"), max_size=300),
    st.integers(min_value=1, max_value=40),
    st.integers(min_value=1, max_value=200),
)
async def test_allowed_streams_stay_byte_identical(reply: str, piece: int, check_every: int) -> None:
    """Whatever the text and however it is cut into events, an allowed stream is unchanged."""
    g = guard(check_every_chars=check_every, holdback_chars=piece)
    events = [chunk(reply[i : i + piece]) for i in range(0, len(reply), piece)] + [b"data: [DONE]\n\n"]
    wire = b"".join(events)
    out = b""
    for start in range(0, len(wire), 13):  # network chunks cut across event boundaries
        out += await g.feed(wire[start : start + 13])
    out += await g.finish()
    assert out == wire


@pytest.mark.slow
async def test_a_streamed_completion_gets_the_verdict_of_its_json_twin(shipped_engine: Engine) -> None:
    """On the shipped stack: the fixture texts, streamed 16 characters an event, end with the
    action the whole text gets as a JSON completion (and stream checks re-read ~1x the text)."""
    from pathlib import Path

    fixtures = Path(__file__).parent / "fixtures"
    named = json.loads((fixtures / "e2e_texts.json").read_text(encoding="utf-8"))
    texts = [v for k, v in named.items() if k != "_comment" and isinstance(v, str)]
    texts += [
        json.loads(line)["text"]
        for line in (fixtures / "classifier_smoke.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    engine = shipped_engine  # warmed up, as a server is before its first request
    scored = 0

    async def check(windows: list[str]):  # type: ignore[no-untyped-def]
        nonlocal scored
        scored += sum(map(len, windows))
        return await engine.check(windows, "completion")

    for text in texts:
        twin = (await engine.check([text], "completion"))[0].action
        g = StreamGuard(check, engine.policy.streaming)
        for start in range(0, len(text), 16):
            await g.feed(chunk(text[start : start + 16]))
        await g.finish()
        assert g.action == twin, text
    assert scored <= 1.5 * sum(map(len, texts))
