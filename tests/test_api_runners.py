"""The OpenAI and Anthropic runners against a real HTTP server on loopback.

Every injected failure must end as a Response with `error` set, never as text: transient ones
(429, 5xx, timeouts, resets) after retries, permanent ones (400, 401, 403, 404, malformed
bodies) at once.
"""

from __future__ import annotations

import importlib
import logging
import re
import sys
import time
from collections.abc import Callable, Iterator
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest

from fiqabench.benchmark.images import file_sha256
from fiqabench.benchmark.pipeline import Evaluation
from fiqabench.benchmark.results import ResultsFile
from fiqabench.benchmark.schema import (
    GenerationConfig,
    ImagePart,
    Message,
    ModelIdentity,
    Request,
    Response,
    TextPart,
)
from fiqabench.benchmark.store import RecordStore
from fiqabench.errors import MissingExtraError, UserError
from fiqabench.runners.anthropic_runner import AnthropicRunner
from fiqabench.runners.api_common import ApiRunner, retry_after_s
from fiqabench.runners.openai_runner import OpenAIRunner
from fiqabench.tasks.registry import TaskRegistry
from tests.conftest import TaskFolderFactory, qa_item, write_image
from tests.loopback_server import (
    Answer,
    Behaviour,
    Hang,
    LoopbackServer,
    Raw,
    Reset,
    Status,
    echo,
)

KEY = "sk-loopback-SECRET-4f9a1c77"
KINDS = ["openai", "anthropic"]
RUNNER_CLASSES: dict[str, tuple[type[ApiRunner], str]] = {
    "openai": (OpenAIRunner, "/v1"),
    "anthropic": (AnthropicRunner, ""),
}
FAST: dict[str, Any] = {
    "timeout_s": 5.0,
    "max_retries": 2,
    "retry_backoff_s": 0.01,
    "concurrency": 4,
}

Connect = Callable[..., ApiRunner]


@pytest.fixture(autouse=True)
def api_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as running:
        yield running


@pytest.fixture
def connect(server: LoopbackServer) -> Iterator[Connect]:
    """Build a runner of a kind pointed at the server; every runner is closed afterwards."""
    built: list[ApiRunner] = []

    def make(kind: str, **settings: Any) -> ApiRunner:
        cls, suffix = RUNNER_CLASSES[kind]
        identity = ModelIdentity(alias=f"{kind}-test", runner=kind, model_id="loopback-model")
        runner = cls(identity, base_url=server.url + suffix, **{**FAST, **settings})
        built.append(runner)
        return runner

    yield make
    for runner in built:
        runner.close()


def request(
    text: str,
    *,
    images: tuple[ImagePart, ...] = (),
    system: str | None = None,
    generation: GenerationConfig | None = None,
) -> Request:
    messages = [Message(role="user", content=(TextPart(text=text), *images))]
    if system is not None:
        messages.insert(0, Message(role="system", content=(TextPart(text=system),)))
    return Request(
        key=f"key-{text}",
        sample_id=text,
        task="api-test",
        messages=tuple(messages),
        generation=generation or GenerationConfig(),
    )


def run(runner: ApiRunner, *texts: str) -> dict[str, Response]:
    """Responses by prompt text; checks that each request is yielded exactly once."""
    pairs = list(runner.generate([request(text) for text in texts]))
    assert sorted(r.sample_id for r, _ in pairs) == sorted(texts)
    return {r.sample_id: response for r, response in pairs}


def assert_failed(response: Response, *fragments: str) -> None:
    assert response.error is not None and response.text is None and not response.ok
    for fragment in fragments:
        assert fragment in response.error


# --- normal answers -------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_each_answer_goes_to_its_request(
    kind: str, server: LoopbackServer, connect: Connect
) -> None:
    texts = [f"prompt {i}" for i in range(12)]
    responses = run(connect(kind), *texts)
    for text in texts:
        response = responses[text]
        assert response.ok and response.text == echo(text)
        assert response.usage is not None and response.usage.input_tokens == 10
        assert response.usage.output_tokens == 5 and response.latency_s > 0
    assert len(server.hits) == 12
    expected = "/v1/chat/completions" if kind == "openai" else "/v1/messages"
    assert {hit.path for hit in server.hits} == {expected}


def test_responses_are_yielded_as_they_complete(server: LoopbackServer, connect: Connect) -> None:
    server.script("slow", Answer(delay_s=0.5))
    pairs = connect("openai").generate([request("slow"), request("fast 1"), request("fast 2")])
    order = [r.sample_id for r, _ in pairs]
    assert order[-1] == "slow"


def test_abandoned_generation_does_not_hang(server: LoopbackServer, connect: Connect) -> None:
    server.script("slow", then=Answer(delay_s=0.3))
    runner = connect("openai", concurrency=2)
    stream = runner.generate([request(f"slow {i}") for i in range(8)])
    next(stream)
    stream.close()  # the pipeline crashed: in-flight requests are abandoned
    assert run(runner, "after")["after"].ok  # the runner still works


@pytest.mark.parametrize("kind", KINDS)
def test_messages_and_generation_settings(
    kind: str, server: LoopbackServer, connect: Connect
) -> None:
    generation = GenerationConfig(max_new_tokens=7, temperature=0.0, top_p=0.9, stop=("END",))
    runner = connect(kind, reasoning_effort="low")
    list(runner.generate([request("hello", system="Be brief.", generation=generation)]))
    body = server.hits[0].body
    assert body["model"] == "loopback-model" and body["max_tokens"] == 7
    assert body["reasoning_effort"] == "low"  # extra settings travel in the body
    list(connect(kind, max_tokens=None, max_completion_tokens=64).generate([request("again")]))
    again = server.hits[1].body  # ...and None removes a field
    assert "max_tokens" not in again and again["max_completion_tokens"] == 64
    if kind == "openai":
        assert body["messages"][0] == {"role": "system", "content": "Be brief."}
        assert body["temperature"] == 0.0 and body["top_p"] == 0.9 and body["stop"] == ["END"]
    else:
        assert body["system"] == "Be brief." and body["stop_sequences"] == ["END"]
        assert [m["role"] for m in body["messages"]] == ["user"]
        # API version 2026-10-21 rejects any sampling parameter with HTTP 400.
        assert "temperature" not in body and "top_p" not in body


@pytest.mark.parametrize(("kind", "image_format"), [("openai", "PNG"), ("anthropic", "JPEG")])
def test_images_arrive_inline_and_downscaled(
    kind: str, image_format: str, server: LoopbackServer, connect: Connect, tmp_path: Path
) -> None:
    path = write_image(tmp_path / "face.png", size=(64, 48))
    image = ImagePart(path=str(path), sha256=file_sha256(path))
    runner = connect(kind, max_image_side=32, image_format=image_format)
    [(_, response)] = list(runner.generate([request("rate it", images=(image,))]))
    assert response.ok
    [hit] = server.hits
    assert hit.images == [(image_format, (32, 24))]  # decoded and checked by the server
    parts = hit.body["messages"][-1]["content"]
    if kind == "openai":
        assert [p["type"] for p in parts] == ["text", "image_url"]
        assert parts[1]["image_url"]["url"].startswith("data:image/png;base64,")
    else:
        assert [p["type"] for p in parts] == ["text", "image"]
        assert parts[1]["source"]["media_type"] == "image/jpeg"


def test_unreadable_image_fails_its_request_only(
    server: LoopbackServer, connect: Connect, tmp_path: Path
) -> None:
    missing = ImagePart(path=str(tmp_path / "gone.png"), sha256="0" * 64)
    pairs = dict(connect("openai").generate([request("bad", images=(missing,)), request("ok")]))
    responses = {r.sample_id: response for r, response in pairs.items()}
    assert_failed(responses["bad"], "cannot build request", "file not found")
    assert responses["ok"].ok and len(server.hits) == 1


# --- transient failures: retried ------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_retry_after_is_honoured(kind: str, server: LoopbackServer, connect: Connect) -> None:
    server.script("limited", Status(429, retry_after="1"))
    response = run(connect(kind), "limited")["limited"]
    assert response.ok and response.text == echo("limited")
    first, second = server.hits_for("limited")
    assert second.arrived - first.arrived >= 0.9


def test_retry_after_as_http_date_is_honoured(server: LoopbackServer, connect: Connect) -> None:
    server.script("busy", Status(503, retry_after=formatdate(time.time() + 2, usegmt=True)))
    assert run(connect("openai"), "busy")["busy"].ok
    first, second = server.hits_for("busy")
    assert second.arrived - first.arrived >= 0.9  # the date has whole seconds: 1 to 2 s away


def test_retry_after_parsing() -> None:
    assert retry_after_s({"retry-after": "3"}) == 3.0
    assert retry_after_s({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after_s({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # past
    future = formatdate(time.time() + 60, usegmt=True)
    assert 58 <= (retry_after_s({"retry-after": future}) or 0) <= 60
    assert retry_after_s({"retry-after": "soon"}) is None and retry_after_s({}) is None


def test_too_long_retry_after_fails_without_waiting(
    server: LoopbackServer, connect: Connect
) -> None:
    server.script("later", Status(429, retry_after="3600"))
    assert_failed(run(connect("openai"), "later")["later"], "HTTP 429", "3600")
    assert len(server.hits) == 1


TRANSIENT: dict[str, Behaviour] = {
    "500": Status(500),
    "503": Status(503),
    "timeout": Hang(1.5),
    "reset": Reset(),
}


@pytest.mark.parametrize("failure", list(TRANSIENT))
@pytest.mark.parametrize("kind", KINDS)
def test_transient_failures_are_retried_then_succeed(
    kind: str, failure: str, server: LoopbackServer, connect: Connect
) -> None:
    server.script("flaky", TRANSIENT[failure])
    responses = run(connect(kind, timeout_s=0.4), "flaky", "steady")
    assert responses["flaky"].ok and responses["flaky"].text == echo("flaky")
    assert responses["steady"].ok
    assert len(server.hits_for("flaky")) == 2


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        ("500", "HTTP 500: injected 500"),
        ("timeout", "timed out after 0.3 s"),
        ("reset", "connection error"),
    ],
)
@pytest.mark.parametrize("kind", KINDS)
def test_exhausted_retries_give_an_error_response(
    kind: str, failure: str, reason: str, server: LoopbackServer, connect: Connect
) -> None:
    server.script("down", then=TRANSIENT[failure])
    response = run(connect(kind, timeout_s=0.3, max_retries=2), "down")["down"]
    assert_failed(response, reason, "gave up after 3 attempts")
    assert len(server.hits_for("down")) == 3


# --- permanent failures: not retried --------------------------------------------------


@pytest.mark.parametrize("status", [400, 401, 403, 404])
@pytest.mark.parametrize("kind", KINDS)
def test_permanent_failures_are_not_retried(
    kind: str, status: int, server: LoopbackServer, connect: Connect
) -> None:
    server.script("refused", then=Status(status))
    response = run(connect(kind), "refused")["refused"]
    assert_failed(response, f"HTTP {status}: injected {status}")
    assert "gave up" not in (response.error or "")
    assert len(server.hits) == 1


MALFORMED_ANY = ["{not json", "[1, 2]", '{"id": "x"}', '{"error": {"message": "overloaded"}}']
MALFORMED = {
    "openai": [
        *MALFORMED_ANY,
        '{"choices": []}',
        '{"choices": [{"message": {"role": "assistant", "content": null}}]}',
        '{"choices": [{"message": {"content": null, "refusal": "I cannot help."}}]}',
    ],
    "anthropic": [*MALFORMED_ANY, '{"content": "text"}', '{"content": [{"type": "text"}]}'],
}


@pytest.mark.parametrize(("kind", "body"), [(k, b) for k in KINDS for b in MALFORMED[k]])
def test_malformed_bodies_are_errors(
    kind: str, body: str, server: LoopbackServer, connect: Connect
) -> None:
    server.script("odd", then=Raw(body))
    assert_failed(run(connect(kind), "odd")["odd"], "malformed response")
    assert len(server.hits) == 1


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("openai", '{"choices": [{"message": {"role": "assistant", "content": ""}}]}'),
        ("anthropic", '{"content": [], "usage": {"input_tokens": 3, "output_tokens": 0}}'),
    ],
)
def test_empty_answer_is_empty_text(
    kind: str, body: str, server: LoopbackServer, connect: Connect
) -> None:
    server.script("quiet", Raw(body))
    response = run(connect(kind), "quiet")["quiet"]
    assert response.ok and response.text == ""  # scored as parse_fail by the task, not an error


# --- budget ---------------------------------------------------------------------------


def test_request_budget_stops_sending(server: LoopbackServer, connect: Connect) -> None:
    responses = run(connect("openai", max_requests=3), *[f"p{i}" for i in range(5)])
    assert sum(r.ok for r in responses.values()) == 3
    failed = [r for r in responses.values() if not r.ok]
    assert len(failed) == 2 and len(server.hits) == 3
    for response in failed:
        assert_failed(response, "budget exhausted: 3 requests sent of max_requests=3")


def test_token_budget_stops_sending(server: LoopbackServer, connect: Connect) -> None:
    runner = connect("anthropic", concurrency=1, max_tokens_budget=30)  # 15 tokens a request
    responses = run(runner, *[f"p{i}" for i in range(5)])
    assert sum(r.ok for r in responses.values()) == 2 and len(server.hits) == 2
    for response in (r for r in responses.values() if not r.ok):
        assert_failed(response, "budget exhausted: 30 tokens used of max_tokens_budget=30")


# --- keys and identity ----------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_missing_key_is_a_user_error(
    kind: str, server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    cls, suffix = RUNNER_CLASSES[kind]
    identity = ModelIdentity(alias="x", runner=kind, model_id="m")
    monkeypatch.setenv("MY_KEY", "")
    with pytest.raises(UserError, match="MY_KEY"):
        cls(identity, base_url=server.url + suffix, api_key_env="MY_KEY")
    with pytest.raises(UserError, match="environment"):
        cls(identity, base_url=server.url + suffix, api_key="sk-inline")


def test_missing_sdk_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "openai", None)  # as if not installed
    monkeypatch.delitem(sys.modules, "fiqabench.runners.openai_runner")
    with pytest.raises(MissingExtraError, match=re.escape("pip install 'fiqabench[api]'")):
        importlib.import_module("fiqabench.runners.openai_runner")


@pytest.mark.parametrize("kind", KINDS)
def test_api_key_never_leaks(
    kind: str, server: LoopbackServer, connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.script("denied", then=Status(401, echo_key=True))  # some servers echo the key
    server.script("broken", then=Status(500, echo_key=True))
    server.script("reset", then=Reset())
    server.script("odd", then=Raw(KEY))
    runner = connect(kind, max_retries=1)
    responses = run(runner, "denied", "broken", "reset", "odd", "fine")
    assert responses["fine"].ok
    errors = [r.error or "" for r in responses.values() if not r.ok]
    assert len(errors) == 4 and any("injected 401 for key" in e for e in errors)
    exposed = [*errors, runner.identity.model_dump_json(), repr(runner), caplog.text]
    assert not [text for text in exposed if KEY in text]
    # ...yet the key from the environment is what the server received.
    assert all(KEY in hit.headers.get("authorization", "") for hit in server.hits)


def test_identity_keys_the_server_not_the_key(server: LoopbackServer, connect: Connect) -> None:
    runner = connect("openai", image_format="jpeg")
    assert runner.identity.args["base_url"] == f"{server.url}/v1/"
    assert runner.identity.args["image_format"] == "JPEG"
    assert KEY not in runner.identity.model_dump_json()
    identity = ModelIdentity(alias="x", runner="openai", model_id="loopback-model")
    elsewhere = OpenAIRunner(identity, base_url="http://127.0.0.1:9/v1")
    try:
        assert elsewhere.identity.fingerprint() != runner.identity.fingerprint()
    finally:
        elsewhere.close()


# --- through the pipeline -------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_pipeline_stores_successes_and_resends_only_failures(
    kind: str, task_folder: TaskFolderFactory, tmp_path: Path
) -> None:
    folder = task_folder([qa_item(i) for i in range(6)])
    out = tmp_path / "run"
    failing = ["Question 1?", "Question 2?", "Question 3?", "Question 4?"]
    with LoopbackServer(answer=lambda prompt: "B") as server:
        server.script("Question 1?", then=Status(500))
        server.script("Question 2?", Status(401))
        server.script("Question 3?", Raw("{oops"))
        server.script("Question 4?", Reset(), Reset())
        cls, suffix = RUNNER_CLASSES[kind]
        identity = ModelIdentity(alias=f"{kind}-test", runner=kind, model_id="loopback-model")

        def evaluate() -> ResultsFile:
            runner = cls(identity, base_url=server.url + suffix, **{**FAST, "max_retries": 1})
            task = TaskRegistry([folder]).get("ext-qa")
            try:
                with RecordStore(out / "records.sqlite") as store:
                    return Evaluation(runner=runner, store=store, output_dir=out).run([task])
            finally:
                runner.close()

        first = evaluate().results["ext-qa"]
        assert first.counts["error"] == 4 and first.counts["ok"] == 2
        with RecordStore(out / "records.sqlite") as store:
            assert store.count() == 2  # errors are never stored
        sent_before = len(server.hits)

        server.script("Question 1?")  # the endpoint is healthy again
        second = evaluate().results["ext-qa"]
        resent = [hit.prompt for hit in server.hits[sent_before:]]
        assert len(resent) == 4
        assert sorted(q for q in failing if any(q in prompt for prompt in resent)) == failing
        assert second.counts["ok"] == 6 and second.timing.n_cached == 2
