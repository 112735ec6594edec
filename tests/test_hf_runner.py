"""HFRunner on tiny random VLMs (Qwen2-VL, Qwen2.5-VL, LLaVA, Idefics3) built in code.

Their answers are noise; what is tested is the plumbing: loading by path (the torchvision-free
processor fallback included), chat templates, left-padded batches, per-request errors, usage,
batch-size invariance, and level scoring with the real Qwen2 tokenizer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch", reason="the hf extra is not installed")
pytest.importorskip("transformers", reason="the hf extra is not installed")

import torch

from fiqabench.benchmark.pipeline import Evaluation, build_request
from fiqabench.benchmark.results import read_samples
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
from fiqabench.errors import UserError
from fiqabench.runners import levels as lv
from fiqabench.runners.base import LevelScorer
from fiqabench.runners.hf import HFRunner, truncate
from fiqabench.tasks.registry import TaskRegistry
from tests import tiny_vlms
from tests.conftest import write_image

KINDS = list(tiny_vlms.BUILDERS)
DIGITS = [str(level) for level in range(1, 8)]
QALIGN_WORDS = list(lv.QALIGN_WEIGHTS)


def identity(folder: Path, alias: str = "tiny") -> ModelIdentity:
    return ModelIdentity(alias=alias, runner="hf", model_id=str(folder))


def load(folder: Path, alias: str = "tiny", **options: Any) -> HFRunner:
    # float32 everywhere: batch-size invariance is exact there. In bfloat16 (the GPU default)
    # padding changes the kernels' summation order: level scores move by about 1e-3 and long
    # greedy answers of these random models can part at near-ties (measured on an H100).
    return HFRunner(identity(folder, alias), dtype="float32", **options)


def mini_qa_requests(runner: HFRunner, n: int = 8, max_new_tokens: int = 12) -> list[Request]:
    task = TaskRegistry().get("mini-qa")
    generation = GenerationConfig(max_new_tokens=max_new_tokens)
    return [
        build_request(runner.identity, task, sample, task.messages(sample)).model_copy(
            update={"generation": generation}
        )
        for sample in task.samples()[:n]
    ]


def by_sample(pairs: Iterator[tuple[Request, Response]]) -> dict[str, Response]:
    return {request.sample_id: response for request, response in pairs}


def with_batch_size(runner: HFRunner, size: int) -> HFRunner:
    runner.batch_size = size
    return runner


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Each tiny model is built once per session, on first use."""
    built: dict[str, Path] = {}

    def get(kind: str) -> Path:
        if kind not in built:
            folder = tmp_path_factory.mktemp(kind.replace(".", "_"))
            built[kind] = tiny_vlms.build(kind, folder)
        return built[kind]

    return get


@pytest.fixture(scope="session")
def tiny_runners(tiny_folder: Callable[[str], Path]) -> Iterator[Callable[[str], HFRunner]]:
    """One loaded runner per tiny model, shared by the tests (they reset `batch_size`)."""
    loaded: dict[str, HFRunner] = {}

    def get(kind: str) -> HFRunner:
        if kind not in loaded:
            loaded[kind] = load(tiny_folder(kind), kind, batch_size=4)
        return loaded[kind]

    yield get
    for runner in loaded.values():
        runner.close()


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    if value == "smolvlm":
        pytest.importorskip("num2words", reason="SmolVLM's processor needs num2words")
    return value


@pytest.fixture
def tiny_model(kind: str, tiny_folder: Callable[[str], Path]) -> Path:
    return tiny_folder(kind)


@pytest.fixture
def tiny_runner(kind: str, tiny_runners: Callable[[str], HFRunner]) -> HFRunner:
    return tiny_runners(kind)


@pytest.fixture(scope="session")
def qwen2_runner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HFRunner]:
    """A tiny Qwen2-VL whose tokenizer is the real Qwen2 one (built once per machine)."""
    try:
        tokenizer = tiny_vlms.qwen2_tokenizer()
    except tiny_vlms.Unavailable as exc:
        pytest.skip(f"real Qwen2 tokenizer unavailable: {exc}")
    folder = tmp_path_factory.mktemp("qwen2-real-tokenizer")
    torch.manual_seed(tiny_vlms.SEED)
    tiny_vlms.build_qwen2_vl(folder, tokenizer=tokenizer)
    runner = load(folder, "qwen2-real", batch_size=3)
    yield runner
    runner.close()


# ------------------------------------------------------------------------------ end to end


def test_mini_qa_end_to_end_by_path(tiny_model: Path, tmp_path: Path) -> None:
    runner = load(tiny_model, tiny_model.name, batch_size=4)
    task = TaskRegistry().get("mini-qa")
    with RecordStore(tmp_path / "records.sqlite") as store:
        Evaluation(runner=runner, store=store, output_dir=tmp_path, limit=8).run([task])
    records = read_samples(tmp_path)
    assert len(records) == 8
    # Noise answers may fail to parse; a failed call would be an error, and there is none.
    assert [r.error for r in records if r.status == "error"] == []
    assert all(r.response is not None for r in records)
    assert all(r.latency_s is not None and r.latency_s > 0 for r in records)
    runner.close()


def test_batch_size_does_not_change_greedy_answers(tiny_runner: HFRunner) -> None:
    requests = mini_qa_requests(tiny_runner)
    one = by_sample(with_batch_size(tiny_runner, 1).generate(requests))
    four = by_sample(with_batch_size(tiny_runner, 4).generate(requests))
    assert all(r.error is None for r in one.values()), one
    assert {k: r.text for k, r in one.items()} == {k: r.text for k, r in four.items()}
    assert {k: r.usage for k, r in one.items()} == {k: r.usage for k, r in four.items()}


def test_batch_size_does_not_change_level_scores(tiny_runner: HFRunner) -> None:
    # The byte-level test tokenizer has every digit as one token.
    requests = mini_qa_requests(tiny_runner)
    one = by_sample(with_batch_size(tiny_runner, 1).score_levels(requests, DIGITS))
    four = by_sample(with_batch_size(tiny_runner, 4).score_levels(requests, DIGITS))
    for key, response in one.items():
        assert response.score == pytest.approx(four[key].score, abs=1e-5)
        assert response.text == four[key].text
    # Different prompts give different distributions: the answer position is really read.
    assert len({round(r.score or 0, 6) for r in one.values()}) > 1


def test_usage_and_prompt(tiny_runner: HFRunner, tmp_path: Path) -> None:
    image = write_image(tmp_path / "face.png", size=(80, 64))
    request = Request(
        key="k",
        sample_id="s",
        task="t",
        messages=(
            Message(role="system", content=(TextPart(text="You grade faces."),)),
            Message(
                role="user",
                content=(ImagePart(path=str(image), sha256="x"), TextPart(text="Quality?")),
            ),
        ),
        generation=GenerationConfig(max_new_tokens=5),
    )
    prompt = tiny_runner._prepare(request).prompt
    assert "You grade faces." in prompt and "Quality?" in prompt
    assert prompt.index("You grade faces.") < prompt.index("Quality?")
    [(_, response)] = list(tiny_runner.generate([request]))
    assert response.error is None and response.usage is not None
    assert response.usage.input_tokens > len("Quality?")
    assert 1 <= response.usage.output_tokens <= 5


# ------------------------------------------------------------------------------ errors


def test_bad_image_fails_its_request_only(tmp_path: Path, tiny_runner: HFRunner) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png at all")
    good = mini_qa_requests(tiny_runner, n=2)
    bad = good[0].model_copy(
        update={
            "key": "bad",
            "sample_id": "bad",
            "messages": (
                Message(
                    role="user",
                    content=(ImagePart(path=str(broken), sha256="x"), TextPart(text="Q")),
                ),
            ),
        }
    )
    responses = by_sample(with_batch_size(tiny_runner, 4).generate([good[0], bad, good[1]]))
    assert responses["bad"].error is not None and "broken.png" in responses["bad"].error
    assert all(responses[r.sample_id].ok for r in good)


def test_failed_batch_is_retried_one_by_one(
    tiny_runners: Callable[[str], HFRunner], monkeypatch: pytest.MonkeyPatch
) -> None:
    tiny_runner = tiny_runners("llava")
    model = tiny_runner.model
    real_generate = model.generate
    sizes: list[int] = []

    def oom_for_batches(*args: Any, **kwargs: Any) -> Any:
        sizes.append(len(kwargs["input_ids"]))
        if len(kwargs["input_ids"]) > 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return real_generate(*args, **kwargs)

    monkeypatch.setattr(model, "generate", oom_for_batches)
    requests = mini_qa_requests(tiny_runner, n=3, max_new_tokens=3)
    responses = by_sample(with_batch_size(tiny_runner, 3).generate(requests))
    assert sizes == [3, 1, 1, 1]
    assert all(r.ok for r in responses.values())


def test_unknown_model_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="cannot load"):
        HFRunner(identity(tmp_path / "no-such-model"))


def test_missing_processor_package_is_a_user_error(
    tiny_folder: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from transformers.models.smolvlm import processing_smolvlm

    monkeypatch.setattr(processing_smolvlm, "num2words", None)
    with pytest.raises(UserError, match="num2words"):
        load(tiny_folder("smolvlm"))


def test_bad_arguments_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="batch_size"):
        HFRunner(identity(tmp_path), batch_size=0)
    with pytest.raises(UserError, match="dtype"):
        HFRunner(identity(tmp_path), dtype="float8")


# ------------------------------------------------------------------------------ loading


def test_processor_fallback_leaves_no_patch_behind(
    tiny_runners: Callable[[str], HFRunner],
) -> None:
    tiny_runner = tiny_runners("qwen2-vl")
    from transformers import Qwen2_5_VLProcessor, Qwen2VLProcessor
    from transformers.processing_utils import ProcessorMixin

    for cls in (Qwen2VLProcessor, Qwen2_5_VLProcessor):
        assert "check_argument_for_proper_class" not in cls.__dict__
    # The library's own check is back in force (without torchvision it fails on its lookup).
    with pytest.raises((TypeError, AttributeError)):
        Qwen2VLProcessor(
            image_processor=tiny_runner.processor.image_processor,
            tokenizer=tiny_runner.tokenizer,
            video_processor=None,
        )
    assert isinstance(tiny_runner.processor, ProcessorMixin)
    assert tiny_runner.tokenizer.padding_side == "left"


def test_max_image_side_shrinks_images(tiny_folder: Callable[[str], Path], tmp_path: Path) -> None:
    image = write_image(tmp_path / "big.png", size=(300, 200))
    runner = load(tiny_folder("llava"), max_image_side=60)
    assert runner._image(ImagePart(path=str(image), sha256="x")).size == (60, 40)
    runner.close()


def test_automatic_device_and_dtype(tiny_folder: Callable[[str], Path]) -> None:
    runner = HFRunner(identity(tiny_folder("llava")))
    if torch.cuda.is_available():
        assert runner.device == "cuda" and runner.dtype in (torch.bfloat16, torch.float16)
    else:
        assert runner.device == "cpu" and runner.dtype == torch.float32
    assert runner.model.dtype == runner.dtype
    assert isinstance(runner, LevelScorer)
    runner.close()


def test_qwen_pixel_limits_reach_the_image_processor(
    tiny_folder: Callable[[str], Path], tmp_path: Path
) -> None:
    image = write_image(tmp_path / "face.png", size=(224, 224))
    request = Request(
        key="k",
        sample_id="s",
        task="t",
        messages=(Message(role="user", content=(ImagePart(path=str(image), sha256="x"),)),),
        generation=GenerationConfig(max_new_tokens=1),
    )
    tokens = {}
    for max_pixels in (56 * 56, 112 * 112):
        runner = load(tiny_folder("qwen2-vl"), max_pixels=max_pixels)
        [(_, response)] = list(runner.generate([request]))
        assert response.usage is not None
        tokens[max_pixels] = response.usage.input_tokens
        runner.close()
    # 14-px patches merged 2x2: 56² px is 4 image tokens, 112² px is 16.
    assert tokens[112 * 112] - tokens[56 * 56] == 12


# ------------------------------------------------------------------------------ level scoring


def test_real_qwen2_tokenizer_has_single_token_levels(qwen2_runner: HFRunner) -> None:
    tokenizer = qwen2_runner.tokenizer
    digit_ids = lv.level_token_ids(tokenizer, DIGITS)
    assert [tokenizer.decode([i]) for i in digit_ids] == DIGITS
    word_ids = lv.level_token_ids(tokenizer, QALIGN_WORDS)
    # "excellent" and "poor" are two tokens bare, so all words take the leading-space form.
    assert [tokenizer.decode([i]) for i in word_ids] == [f" {w}" for w in QALIGN_WORDS]
    with pytest.raises(lv.LevelTokenError, match=r"level ' very bad' is 2 tokens"):
        lv.level_token_ids(tokenizer, ["perfect", "very bad"])


@pytest.mark.parametrize("levels", [DIGITS, QALIGN_WORDS], ids=["digits", "qalign-words"])
def test_expectations_lie_within_the_weights(qwen2_runner: HFRunner, levels: list[str]) -> None:
    requests = mini_qa_requests(qwen2_runner, n=4)
    weights = lv.default_weights(levels)
    for _, response in qwen2_runner.score_levels(requests, levels):
        assert response.error is None and response.score is not None
        assert min(weights) <= response.score <= max(weights)
        assert response.logprobs is not None and list(response.logprobs) == levels
        assert math.fsum(math.exp(lp) for lp in response.logprobs.values()) == pytest.approx(1)
        assert response.text == max(response.logprobs, key=response.logprobs.__getitem__)


def test_same_request_same_score_in_any_batch(qwen2_runner: HFRunner) -> None:
    requests = mini_qa_requests(qwen2_runner, n=6)
    one = by_sample(with_batch_size(qwen2_runner, 1).score_levels(requests, DIGITS))
    three = by_sample(with_batch_size(qwen2_runner, 3).score_levels(requests, DIGITS))
    for key, response in one.items():
        assert response.score == pytest.approx(three[key].score, abs=1e-5)


def test_custom_weights(qwen2_runner: HFRunner) -> None:
    [request] = mini_qa_requests(qwen2_runner, n=1)
    weights = [1.0, 0.75, 0.5, 0.25, 0.0]  # Q-Align's 0..1 scale, best first
    [(_, scaled)] = list(qwen2_runner.score_levels([request], QALIGN_WORDS, weights))
    [(_, plain)] = list(qwen2_runner.score_levels([request], QALIGN_WORDS))
    assert scaled.score == pytest.approx(((plain.score or 0) - 1) / 4)


# ------------------------------------------------------------------------------ levels.py


class FakeEncoder:
    def __init__(self, vocab: Sequence[str]):
        self.vocab = list(vocab)

    def encode(self, text: str, *, add_special_tokens: bool = True) -> list[int]:
        if text in self.vocab:
            return [self.vocab.index(text)]
        return [self.vocab.index(ch) if ch in self.vocab else 999 for ch in text]


def test_level_token_ids_prefers_one_form_for_all() -> None:
    encoder = FakeEncoder(["good", "bad", " good", " bad"])
    assert lv.level_token_ids(encoder, ["good", "bad"]) == [0, 1]
    assert lv.level_token_ids(FakeEncoder([" good", "bad", " bad"]), ["good", "bad"]) == [0, 2]


def test_level_token_ids_errors_name_the_level() -> None:
    with pytest.raises(lv.LevelTokenError, match=r"level ' excellent' is 10 tokens"):
        lv.level_token_ids(FakeEncoder(["good"]), ["good", "excellent"])
    with pytest.raises(lv.LevelTokenError, match=r"one form for all levels"):
        lv.level_token_ids(FakeEncoder(["good", " bad"]), ["good", "bad"])
    with pytest.raises(lv.LevelTokenError, match=r"same token"):
        lv.level_token_ids(FakeEncoder(["good"]), ["good", " good"])


def test_default_weights() -> None:
    assert lv.default_weights(DIGITS) == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    assert lv.default_weights(["Bad", "Excellent"]) == [1.0, 5.0]
    with pytest.raises(UserError, match="give one weight per level"):
        lv.default_weights(["sharp", "blurry"])
    with pytest.raises(UserError, match="2 levels but 1 weights"):
        lv.check_weights(["a", "b"], [1.0])


def test_expectation_of_a_softmax() -> None:
    logprobs = lv.log_softmax([1000.0, 1000.0, -1000.0])  # stable for extreme logits
    assert logprobs[0] == pytest.approx(math.log(0.5)) and math.exp(logprobs[2]) == 0
    assert lv.expectation(logprobs, [1.0, 3.0, 100.0]) == pytest.approx(2.0)


def test_truncate_at_first_stop() -> None:
    assert truncate("Score: 5\nUser: more", ["\nUser", "Score"]) == ""
    assert truncate("Score: 5\nUser: more", ["\nUser"]) == "Score: 5"
    assert truncate("no stop here", ["###", ""]) == "no stop here"
