"""LmmsEvalRunner: failure strings, Instance payloads and batching with fakes; lmms-eval's dummy
model end to end when lmms-eval is installed."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from PIL import Image

from fiqabench.benchmark.schema import GenerationConfig, ImagePart, Message, Request, TextPart
from fiqabench.errors import MissingExtraError
from fiqabench.runners import lmms
from fiqabench.runners.base import ModelIdentity
from tests.conftest import write_image

IDENTITY = ModelIdentity(alias="l", runner="lmms", model_id="o/m", args={"model": "dummy"})


def request(
    image: Path | None = None, *, text: str = "Rate it.", stop: tuple[str, ...] = ()
) -> Request:
    user: list[TextPart | ImagePart] = [TextPart(text=text)]
    if image is not None:
        user.insert(0, ImagePart(path=str(image), sha256="0" * 64))
    return Request(
        key=f"{abs(hash((str(image), text))):064x}"[-64:],
        sample_id="s",
        task="t",
        messages=(
            Message(role="system", content=(TextPart(text="You judge portraits."),)),
            Message(role="user", content=tuple(user)),
        ),
        generation=GenerationConfig(max_new_tokens=32, stop=stop),
    )


@dataclass
class FakeInstance:
    """lmms_eval.api.instance.Instance's constructor, recorded."""

    request_type: str
    arguments: tuple[Any, ...]
    idx: int
    metadata: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------- outputs


@pytest.mark.parametrize(
    "text",
    [
        "[LMMS_EVAL_REQUEST_FAILED after 5 retries] Error code: 429 - rate limited",
        "[LMMS_EVAL_BUDGET_EXCEEDED]",
        "  [LMMS_EVAL_REQUEST_FAILED after 1 retries] timeout\nmore",
        "",
        "  \n ",
    ],
)
def test_failure_strings_are_errors_not_answers(text: str) -> None:
    response = lmms.to_response(text, GenerationConfig())
    assert response.error and response.text is None and not response.ok
    assert "\n" not in response.error


def test_answers_keep_their_text_usage_and_stop() -> None:
    plain = lmms.to_response("The face is sharp.", GenerationConfig())
    assert plain.ok and plain.text == "The face is sharp." and plain.usage is None
    counts = SimpleNamespace(input_tokens=None, output_tokens=4)
    result = SimpleNamespace(text="B\n\nBecause", token_counts=counts)
    cut = lmms.to_response(result, GenerationConfig(stop=("\n\n",)))
    assert cut.text == "B" and cut.usage is not None and cut.usage.output_tokens == 4
    quoted = lmms.to_response("It said [LMMS_EVAL_REQUEST_FAILED", GenerationConfig())
    assert quoted.ok  # only a leading marker is a failure
    assert lmms.to_response(["a", "b"], GenerationConfig()).error


# ----------------------------------------------------------------------------- payloads


def test_document_keeps_images_in_place_and_joins_texts(tmp_path: Path) -> None:
    doc = lmms.document(request(write_image(tmp_path / "f.png")))
    (image,) = lmms.doc_to_visual(doc)
    assert isinstance(image, Image.Image) and image.mode == "RGB"
    system, user = lmms.doc_to_messages(doc)
    assert system == {
        "role": "system",
        "content": [{"type": "text", "text": "You judge portraits."}],
    }
    assert user["content"][0] == {"type": "image", "url": image}
    assert user["content"][1] == {"type": "text", "text": "Rate it."}
    assert doc["context"] == "You judge portraits.\n\nRate it."


@pytest.mark.parametrize("chat", [True, False])
def test_instances_follow_the_wrapper_contract(chat: bool) -> None:
    instance = lmms.make_instance(FakeInstance, 3, request(stop=()), chat=chat)
    assert isinstance(instance, FakeInstance)
    assert instance.request_type == "generate_until"
    assert instance.metadata == {"task": lmms.TASK, "doc_id": 3, "repeats": 1}
    args = instance.arguments
    if chat:
        text, to_messages, kwargs, doc_id, task, split = args
        assert to_messages is lmms.doc_to_messages
    else:
        text, kwargs, to_visual, doc_id, task, split = args
        assert to_visual is lmms.doc_to_visual
    assert (text, doc_id, task, split) == (
        "You judge portraits.\n\nRate it.",
        3,
        lmms.TASK,
        lmms.SPLIT,
    )
    assert kwargs["until"] == []  # explicit: lmms-eval would cut at a blank line otherwise
    assert kwargs["max_new_tokens"] == 32 and kwargs["do_sample"] is False


# ----------------------------------------------------------------------------- runner


class FakeWrapper:
    """An lmms-eval wrapper: reads documents through task_dict like the real ones do."""

    def __init__(self, replies: dict[str, str]):
        self.replies = replies
        self.task_dict: dict[str, Any] = {}
        self.calls: list[int] = []

    def generate_until(self, instances: Sequence[FakeInstance]) -> list[Any]:
        self.calls.append(len(instances))
        out = []
        for instance in instances:
            text, _, kwargs, doc_id, task, split = instance.arguments
            doc = self.task_dict[task][split][doc_id]
            assert kwargs["until"] == []
            if "BOOM" in text:
                raise RuntimeError("CUDA out of memory\ntrace")
            reply = next((v for k, v in self.replies.items() if k in text), "A")
            out.append(SimpleNamespace(text=f"{reply}:{len(doc['images'])}", token_counts=None))
        return out


def fake_runner(wrapper: FakeWrapper, batch_size: int) -> lmms.LmmsEvalRunner:
    runner = object.__new__(lmms.LmmsEvalRunner)
    runner.identity = IDENTITY
    runner.name = "fake"
    runner.batch_size = batch_size
    runner.chat = True
    runner.model = wrapper
    runner.instance = FakeInstance
    return runner


def test_runner_maps_answers_failures_and_crashes(tmp_path: Path) -> None:
    image = write_image(tmp_path / "f.png")
    good = request(image, text="good one")
    failed = request(image, text="rate limited")
    crash = request(image, text="BOOM")
    missing = request(tmp_path / "gone.png", text="no file")
    wrapper = FakeWrapper({"good": "B", "rate limited": "[LMMS_EVAL_REQUEST_FAILED after 3"})
    runner = fake_runner(wrapper, batch_size=3)
    answers = {r.key: resp for r, resp in runner.generate([good, failed, crash, missing])}
    assert answers[good.key].text == "B:1"
    assert "LMMS_EVAL_REQUEST_FAILED" in str(answers[failed.key].error)
    assert answers[failed.key].text is None
    assert answers[crash.key].error == "lmms-eval fake: RuntimeError: CUDA out of memory"
    assert "file not found" in str(answers[missing.key].error)
    assert wrapper.calls == [3, 1, 1, 1]  # the crashed batch, then one by one
    runner.close()
    assert runner.model is None


def test_runner_without_lmms_eval_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "lmms_eval", None)
    with pytest.raises(MissingExtraError, match=r"fiqabench\[lmms\]"):
        lmms.LmmsEvalRunner(IDENTITY, model="dummy")


# ----------------------------------------------------------------------------- lmms-eval itself


def test_dummy_model_through_real_lmms_eval(tmp_path: Path) -> None:
    pytest.importorskip("lmms_eval")
    runner = lmms.LmmsEvalRunner(IDENTITY, model="dummy", model_args="response=B")
    try:
        ((_, response),) = runner.generate([request(write_image(tmp_path / "f.png"))])
    finally:
        runner.close()
    assert response.ok and response.text == "B"
