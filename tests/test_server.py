"""`safety-filter serve` as a user runs it (a real process on 127.0.0.1), with the official
`openai` client pointed at it: allowed answers work unchanged, a blocked prompt raises the
client's normal error, and the demo's harmful completion is cut."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from .helpers import free_port

pytestmark = pytest.mark.slow  # real servers or real models

TEXTS = json.loads((Path(__file__).parent / "fixtures" / "e2e_texts.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    log_path = tmp_path_factory.mktemp("serve") / "serve.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "safety_filter", "serve", "--port", str(port), "--log-level", "warning"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    try:
        while True:
            try:
                if httpx.get(f"{url}/v1/models", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"safety-filter serve did not start:\n{log_path.read_text(errors='replace')}")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


@pytest.fixture
def client(server: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server}/v1", api_key="unused", max_retries=0)


def test_openai_client_gets_allowed_answers_unchanged(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model="demo", messages=[{"role": "user", "content": "demo: allowed"}])
    assert "Eiffel Tower" in (reply.choices[0].message.content or "")
    assert reply.choices[0].finish_reason == "stop"


def test_openai_client_streams_allowed_answers(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="demo", messages=[{"role": "user", "content": "demo: allowed"}], stream=True
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text.startswith("Here is a perfectly ordinary answer") and text.endswith("Paris.")


def test_openai_client_raises_its_normal_error_for_a_blocked_prompt(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as error:
        client.chat.completions.create(model="demo", messages=[{"role": "user", "content": TEXTS["extremist_en"]}])
    assert error.value.status_code == 400
    assert error.value.code == "content_filter"
    body = error.value.body
    assert isinstance(body, dict) and body["innererror"]["content_filter_result"]["extremism"]["filtered"] is True


def test_demo_harmful_completion_is_withheld(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model="demo", messages=[{"role": "user", "content": "demo: blocked"}])
    assert reply.choices[0].finish_reason == "content_filter"
    assert not reply.choices[0].message.content


def test_demo_harmful_stream_is_cut_before_the_offending_text(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="demo", messages=[{"role": "user", "content": "demo: blocked"}], stream=True
    )
    chunks = [chunk for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "genocide" not in text
    assert chunks[-1].choices[0].finish_reason == "content_filter"


@pytest.mark.parametrize("path", ["deployment", "v1"])
def test_azure_clients_on_deployment_and_v1_paths(server: str, path: str) -> None:
    """`AzureOpenAI` on `/openai/deployments/{name}/...`, and the OpenAI client on Azure's GA v1
    path: allowed, blocked prompt, withheld output, and a stream cut before the offending text."""
    if path == "deployment":
        client: openai.OpenAI = openai.AzureOpenAI(
            azure_endpoint=server, api_key="k", api_version="2024-10-21", max_retries=0
        )
    else:
        client = openai.OpenAI(base_url=f"{server}/openai/v1/", api_key="k", max_retries=0)
    with client:
        def ask(content: str, **extra):  # type: ignore[no-untyped-def]
            return client.chat.completions.create(
                model="demo", messages=[{"role": "user", "content": content}], **extra
            )

        assert "Eiffel Tower" in (ask("demo: allowed").choices[0].message.content or "")
        with pytest.raises(openai.BadRequestError) as error:
            ask(TEXTS["extremist_en"])
        assert error.value.code == "content_filter"
        withheld = ask("demo: blocked").choices[0]
        assert withheld.finish_reason == "content_filter" and not withheld.message.content
        chunks = list(ask("demo: blocked", stream=True))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert "genocide" not in text and chunks[-1].choices[0].finish_reason == "content_filter"


def test_demo_explicit_answer_is_annotated(server: str) -> None:
    response = httpx.post(
        f"{server}/v1/chat/completions", json={"messages": [{"role": "user", "content": "demo: annotated"}]}, timeout=60
    )
    assert response.headers["x-safety-filter-action"] == "annotate"
    assert response.json()["choices"][0]["content_filter_results"]["sexual"]["filtered"] is True


def test_health_and_metrics_count_verdicts_without_text(server: str, client: openai.OpenAI) -> None:
    assert httpx.get(f"{server}/safety-filter/health").json()["status"] == "ok"
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="demo", messages=[{"role": "user", "content": TEXTS["extremist_fr"]}])
    metrics = httpx.get(f"{server}/safety-filter/metrics").text
    assert 'safety_filter_verdicts_total{action="block",role="prompt"}' in metrics
    assert 'safety_filter_filtered_total{category="extremism",role="prompt"}' in metrics
    assert "remplacement" not in metrics and "Hitler" not in metrics
