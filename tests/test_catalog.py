"""The model catalog, the ad-hoc model forms, build_runner, and vLLM's payloads (no vLLM needed)."""

from __future__ import annotations

import importlib.util
import io
import math
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console

import fiqabench.cli as cli
from fiqabench.benchmark.schema import (
    GenerationConfig,
    ImagePart,
    Message,
    Request,
    Response,
    TextPart,
    Usage,
)
from fiqabench.errors import MissingExtraError, UserError
from fiqabench.runners import catalog, levels, vllm_runner
from fiqabench.runners.base import LevelScorer, ModelIdentity
from fiqabench.runners.catalog import (
    CappedRunner,
    CatalogEntry,
    build_runner,
    load_catalog,
    parse_adhoc,
    resolve_spec,
)
from tests.conftest import write_image
from tests.test_cli import run_cli

HEX40 = re.compile(r"[0-9a-f]{40}")
HUB_RUNNERS = {"hf", "vllm", "lmms"}

# Every pinned hub revision, each seen as a hub-cache snapshot folder (models--ORG--NAME/
# snapshots/SHA) in at least two independent public repositories. Changing one means checking it
# the same way: this list is the review point.
PINNED = {
    "qwen2-vl-7b": "eed13092ef92e448dd6875b2a00151bd3f7db0ac",
    "qwen2.5-vl-3b": "66285546d2b821cf421d4f5eb2576359d3770cd3",
    "qwen2.5-vl-7b": "cc594898137f460bfe9f0759e9844b3ce807cfb5",
    "qwen2.5-vl-32b": "7cfb30d71a1f4f49a57592323337a4a4727301da",
    "qwen2.5-vl-72b": "89c86200743eec961a297729e7990e8f2ddbc4c5",
    "qwen3-vl-4b": "ebb281ec70b05090aa6165b016eac8ec08e71b17",
    "qwen3-vl-8b": "0c351dd01ed87e9c1b53cbc748cba10e6187ff3b",
    "qwen3-vl-32b": "0cfaf48183f594c314753d30a4c4974bc75f3ccb",
    "gemma-3-4b": "093f9f388b31de276ce2de164bdc2081324b9767",
    "gemma-3-12b": "96b6f1eccf38110c56df3a15bffe176da04bfd80",
    "gemma-3-27b": "005ad3404e59d6023443cb575daa05336842228a",
    "idefics2-8b": "2c42686c57fe21cf0348c9ce1077d094b72e7698",
    "llava-onevision-7b": "0d50680527681998e456c7b78950205bedd8a068",
    "smolvlm": "81cd9a775a4d644f2faf4e7becff4559b46b14c7",
    "internvl3-1b": "014c0583a0d4bedf29fbe2dbff4f865eb998e171",
    "internvl3.5-8b": "741a7d03020411e666c6109218ab71e08151ef86",
}
REQUIRED_ALIASES = {
    "qwen2-vl-7b",
    "qwen2.5-vl-3b",
    "qwen2.5-vl-7b",
    "qwen2.5-vl-32b",
    "qwen2.5-vl-72b",
    "qwen3-vl-4b",
    "qwen3-vl-8b",
    "qwen3-vl-32b",
    "gemma-3-4b",
    "gemma-3-12b",
    "gemma-3-27b",
    "idefics2-8b",
    "idefics3-8b",
    "phi-4-multimodal",
    *(f"internvl3-{size}" for size in ("1b", "2b", "8b", "14b", "38b")),
    *(f"internvl3.5-{size}" for size in ("1b", "2b", "4b", "8b", "14b", "38b")),
    "llava-onevision-7b",
    "smolvlm",
    "smolvlm2-2.2b",
    "gpt-4o",
    "gpt-4.1",
    "gpt-5",
    "gpt-5-mini",
    "claude-sonnet-4.5",
    "gemini-2.5-pro",
    "grok-4",
}


# ----------------------------------------------------------------------------- fakes


class FakeRunner:
    """Stands in for a heavy runner: records what build_runner passed."""

    def __init__(self, identity: ModelIdentity, **kwargs: Any):
        self.identity = identity
        self.kwargs = kwargs
        self.seen: list[Request] = []

    def generate(self, requests: Sequence[Request]) -> Iterator[tuple[Request, Response]]:
        for request in requests:
            self.seen.append(request)
            yield request, Response(text=str(request.generation.max_new_tokens))

    def close(self) -> None:
        return None


class FakeScorer(FakeRunner):
    def score_levels(
        self,
        requests: Sequence[Request],
        levels: Sequence[str],
        weights: Sequence[float] | None = None,
    ) -> Iterator[tuple[Request, Response]]:
        for request in requests:
            yield request, Response(score=1.0)


class StrictRunner:
    """A runner without **kwargs: unknown catalog args must be refused with one line."""

    def __init__(self, identity: ModelIdentity, *, dtype: str = "auto"):
        self.identity = identity


@pytest.fixture
def fake_runners(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every heavy runner built from this module's FakeRunner, its extra 'installed'."""
    for name in ("hf", "vllm", "openai", "anthropic", "lmms"):
        extra = catalog.RUNNERS[name][2]
        monkeypatch.setitem(catalog.RUNNERS, name, (__name__, "FakeRunner", extra))
    monkeypatch.setattr(catalog, "_installed", lambda module: True)


def use_catalog(monkeypatch: pytest.MonkeyPatch, *entries: CatalogEntry) -> None:
    table = {**load_catalog(), **{entry.alias: entry for entry in entries}}
    monkeypatch.setattr(catalog, "load_catalog", lambda path=None: table)


def request(
    image: Path | None = None, *, max_new_tokens: int = 128, text: str = "Rate the quality."
) -> Request:
    user: list[TextPart | ImagePart] = [TextPart(text=text)]
    if image is not None:
        user.insert(0, ImagePart(path=str(image), sha256="0" * 64))
    return Request(
        key=f"{abs(hash((str(image), text, max_new_tokens))):064x}"[-64:],
        sample_id="s1",
        task="t",
        messages=(
            Message(role="system", content=(TextPart(text="You judge portraits."),)),
            Message(role="user", content=tuple(user)),
        ),
        generation=GenerationConfig(max_new_tokens=max_new_tokens),
    )


# ----------------------------------------------------------------------------- the catalog


def test_catalog_validates_and_names_known_runners() -> None:
    entries = load_catalog()
    assert set(entries) >= REQUIRED_ALIASES
    for alias, entry in entries.items():
        assert entry.alias == alias
        assert entry.runner in catalog.RUNNERS, alias
        assert entry.description, alias


def test_aliases_are_lowercase_and_free_of_the_adhoc_colon() -> None:
    for alias in load_catalog():
        assert catalog.ALIAS_PATTERN.fullmatch(alias), alias
        assert alias == alias.lower() and ":" not in alias


def test_hub_revisions_are_pinned_commits_or_null() -> None:
    entries = load_catalog()
    pinned = {a: e.revision for a, e in entries.items() if e.runner in HUB_RUNNERS and e.revision}
    assert pinned == PINNED
    assert all(HEX40.fullmatch(revision) for revision in pinned.values())
    owner: dict[str, str] = {}
    for alias, revision in pinned.items():  # a commit belongs to one repository
        model_id = entries[alias].model_id
        assert owner.setdefault(revision, model_id) == model_id, alias
    for alias, entry in entries.items():
        if entry.runner in HUB_RUNNERS and entry.revision is None:
            assert "unpinned" in entry.description or "cannot pin" in entry.description, alias


def test_local_entries_use_args_both_engines_accept() -> None:
    for alias, entry in load_catalog().items():
        if entry.runner in catalog.LOCAL_RUNNERS:
            assert set(entry.args) <= catalog.PORTABLE_ARGS, alias
            assert entry.args.get("dtype") == "bfloat16", alias


def test_openai_compatible_endpoints_name_their_key() -> None:
    entries = load_catalog()
    assert entries["gemini-2.5-pro"].args == {
        "base_url": "https://generativelanguage.googleapis.com/v1beta/openai/",
        "api_key_env": "GEMINI_API_KEY",
    }
    assert entries["grok-4"].args["base_url"] == "https://api.x.ai/v1"
    assert entries["grok-4"].args["api_key_env"] == "XAI_API_KEY"
    assert entries["claude-sonnet-4.5"].runner == "anthropic"
    assert entries["claude-sonnet-4.5"].model_id.startswith("claude-sonnet-4-5")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("a:\n  runner: random\n  model_id: x\na:\n  runner: random\n  model_id: y\n", "twice"),
        ("a:\n  runner: teleport\n  model_id: x\n", "unknown runner 'teleport'"),
        ("Big:\n  runner: random\n  model_id: x\n", "lowercase"),
        ("a:\n  runner: random\n", "model_id"),
        ("a:\n  runner: random\n  model_id: x\n  max_new_tokens: 0\n", "max_new_tokens"),
    ],
)
def test_bad_catalog_files_are_errors_naming_the_file(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match=problem) as info:
        load_catalog(path)
    assert str(path) in str(info.value)


def test_models_list_shows_the_new_aliases_and_their_extras(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    console = Console(width=400, record=True, file=io.StringIO())
    monkeypatch.setattr(cli, "out", console)
    code, _, _ = run_cli("models", "list", capsys=capsys)
    text = console.export_text()
    assert code == 0
    for alias in ("qwen2.5-vl-7b", "internvl3.5-38b", "gpt-5", "claude-sonnet-4.5", "grok-4"):
        assert alias in text
    row = next(line for line in text.splitlines() if "qwen3-vl-8b" in line)
    assert "hf" in row and "0c351dd01ed87e9c1b53cbc748cba10e6187ff3b" in row
    assert any("gpt-4o" in line and "api" in line for line in text.splitlines())


# ----------------------------------------------------------------------------- ad-hoc forms


@pytest.mark.parametrize(
    ("name", "parsed"),
    [
        ("hf:Qwen/Qwen2.5-VL-7B-Instruct", ("hf", "Qwen/Qwen2.5-VL-7B-Instruct")),
        ("vllm:/models/mine", ("vllm", "/models/mine")),
        ("openai:gpt-4o-mini", ("openai", "gpt-4o-mini")),
        ("anthropic:claude-x", ("anthropic", "claude-x")),
        ("qwen2.5-vl-7b", None),
        ("scores:a.csv", None),
        ("ollama:llava", None),
    ],
)
def test_adhoc_forms_parse(name: str, parsed: tuple[str, str] | None) -> None:
    assert parse_adhoc(name) == parsed


def test_hub_id_form_has_no_revision_and_alias_form_borrows_the_entry() -> None:
    hub = resolve_spec("hf:Qwen/Qwen2.5-VL-7B-Instruct")
    assert (hub.runner, hub.model_id, hub.revision, hub.args) == (
        "hf",
        "Qwen/Qwen2.5-VL-7B-Instruct",
        None,
        {},
    )
    borrowed = resolve_spec("vllm:qwen2.5-vl-72b")
    entry = load_catalog()["qwen2.5-vl-72b"]
    assert borrowed.runner == "vllm"
    assert (borrowed.model_id, borrowed.revision, borrowed.args) == (
        entry.model_id,
        entry.revision,
        entry.args,
    )
    assert borrowed.identity("vllm:qwen2.5-vl-72b").alias == "vllm:qwen2.5-vl-72b"


def test_local_folder_identity_follows_the_folder_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "qwen2_vl"}')
    (folder / "model.safetensors").write_bytes(b"w" * 4096)
    (folder / ".cache").mkdir()
    (folder / ".cache" / "lock").write_text("ignored")
    spec = resolve_spec(f"hf:{folder}")
    identity = spec.identity(f"hf:{folder}")
    assert identity.model_id == str(folder.resolve()) and identity.revision is None
    first = identity.args[catalog.FINGERPRINT_ARG]
    assert spec.args == {}  # the fingerprint keys the store; the runner never sees it

    (folder / ".cache" / "lock").write_text("changed")
    assert catalog.folder_fingerprint(folder) == first
    (folder / "config.json").write_text('{"model_type": "qwen2_vl", "x": 1}')
    second = catalog.folder_fingerprint(folder)
    assert second != first

    # Weights above the whole-file limit are read at both ends: a retrained tail is seen.
    monkeypatch.setattr(catalog, "_WHOLE_FILE_LIMIT", 1024)
    monkeypatch.setattr(catalog, "_SAMPLE", 256)
    sampled = catalog.folder_fingerprint(folder)
    (folder / "model.safetensors").write_bytes(b"w" * 4095 + b"v")
    assert catalog.folder_fingerprint(folder) != sampled


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("hf:", "names no model"),
        ("openai:  ", "names no model"),
        ("hf:not a hub id", "neither a folder nor a Hugging Face hub id"),
        ("vllm:gpt-4o", "is a 'openai' model"),
        ("qwen2.5-vl7b", "did you mean qwen2.5-vl-7b"),
    ],
)
def test_bad_model_names_are_user_errors(name: str, problem: str) -> None:
    with pytest.raises(UserError, match=re.escape(problem)):
        build_runner(name)


# ----------------------------------------------------------------------------- build_runner


def test_missing_extra_is_one_line_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def absent(*missing: str) -> Any:
        def find_spec(name: str, *args: Any, **kwargs: Any) -> Any:
            return None if name in missing else real(name, *args, **kwargs)

        return find_spec

    cases = [
        ("qwen2.5-vl-7b", ("torch",), "hf"),
        ("vllm:Qwen/Qwen2.5-VL-7B-Instruct", ("vllm",), "vllm"),
        ("gpt-4o", ("openai",), "api"),
        ("anthropic:claude-x", ("anthropic",), "api"),
        ("lmms-qwen2.5-vl-7b", ("lmms_eval",), "lmms"),
    ]
    for name, missing, extra in cases:
        monkeypatch.setattr(importlib.util, "find_spec", absent(*missing))
        with pytest.raises(MissingExtraError) as info:
            build_runner(name)
        assert info.value.extra == extra
        assert f"pip install 'fiqabench[{extra}]'" in str(info.value)
        assert "\n" not in str(info.value)


@pytest.mark.usefixtures("fake_runners")
def test_overrides_merge_into_args_and_identity() -> None:
    runner = build_runner(
        "qwen2.5-vl-7b", overrides={"batch_size": 2, "revision": "a" * 40, "base_url": None}
    )
    assert isinstance(runner, FakeRunner)
    entry = load_catalog()["qwen2.5-vl-7b"]
    assert runner.kwargs == {**entry.args, "batch_size": 2}
    identity = runner.identity
    assert identity.alias == "qwen2.5-vl-7b" and identity.revision == "a" * 40
    assert identity.args == entry.args  # batch size changes speed, not answers


@pytest.mark.usefixtures("fake_runners")
def test_api_overrides_reach_the_runner_and_only_the_endpoint_keys_the_store() -> None:
    runner = build_runner(
        "openai:Qwen/Qwen2.5-VL-7B-Instruct",
        overrides={"base_url": "http://127.0.0.1:8000/v1", "api_key_env": "LOCAL_KEY"},
    )
    assert isinstance(runner, FakeRunner)
    assert runner.kwargs == {"base_url": "http://127.0.0.1:8000/v1", "api_key_env": "LOCAL_KEY"}
    assert runner.identity.runner == "openai"
    assert runner.identity.args == {"base_url": "http://127.0.0.1:8000/v1"}
    grok = build_runner("grok-4", overrides={"api_key_env": "MY_XAI"})
    assert isinstance(grok, FakeRunner) and grok.kwargs["api_key_env"] == "MY_XAI"
    assert grok.kwargs["base_url"] == "https://api.x.ai/v1"


@pytest.mark.usefixtures("fake_runners")
@pytest.mark.parametrize(
    ("name", "overrides", "problem"),
    [
        ("qwen2.5-vl-7b", {"base_url": "http://x"}, "--base-url does not apply"),
        ("gpt-4o", {"batch_size": 4}, "--batch-size does not apply"),
        ("random", {"api_key_env": "K"}, "--api-key-env does not apply"),
        ("scores:any.csv", {"base_url": "http://x"}, "--base-url does not apply"),
    ],
)
def test_overrides_that_do_not_apply_are_user_errors(
    name: str, overrides: dict[str, object], problem: str
) -> None:
    with pytest.raises(UserError, match=problem):
        build_runner(name, overrides=overrides)


@pytest.mark.usefixtures("fake_runners")
def test_a_local_folder_takes_no_revision(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(UserError, match="local folder"):
        build_runner(f"hf:{tmp_path}", overrides={"revision": "b" * 40})


def test_unknown_override_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="colour"):
        build_runner("random", overrides={"colour": "red"})


def test_random_still_builds_with_its_seed() -> None:
    runner = build_runner("random", seed=7)
    assert runner.identity.args == {"seed": 7} and runner.identity.alias == "random"


def test_an_argument_the_runner_does_not_take_is_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(catalog.RUNNERS, "hf", (__name__, "StrictRunner", "hf"))
    monkeypatch.setattr(catalog, "_installed", lambda module: True)
    use_catalog(
        monkeypatch,
        CatalogEntry(alias="typo", runner="hf", model_id="o/m", args={"dtpye": "bfloat16"}),
    )
    with pytest.raises(UserError, match="runner 'hf' takes no argument dtpye"):
        build_runner("typo")


@pytest.mark.usefixtures("fake_runners")
def test_catalog_cap_lowers_max_new_tokens_and_keys_the_store(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_catalog(
        monkeypatch,
        CatalogEntry(alias="capped", runner="hf", model_id="o/m", max_new_tokens=16),
    )
    runner = build_runner("capped")
    assert isinstance(runner, CappedRunner) and not isinstance(runner, LevelScorer)
    assert runner.identity.args == {catalog.CAP_ARG: 16}
    long, short = request(max_new_tokens=128), request(max_new_tokens=8, text="other")
    answers = list(runner.generate([long, short]))
    assert [r for r, _ in answers] == [long, short]  # the originals come back
    assert [response.text for _, response in answers] == ["16", "8"]
    inner = runner.inner
    assert isinstance(inner, FakeRunner)
    assert [r.generation.max_new_tokens for r in inner.seen] == [16, 8]


def test_capped_level_scorer_stays_a_level_scorer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(catalog.RUNNERS, "hf", (__name__, "FakeScorer", "hf"))
    monkeypatch.setattr(catalog, "_installed", lambda module: True)
    use_catalog(
        monkeypatch,
        CatalogEntry(alias="capped", runner="hf", model_id="o/m", max_new_tokens=16),
    )
    runner = build_runner("capped")
    assert isinstance(runner, LevelScorer)
    (_, response), *_ = runner.score_levels([request()], ["1", "2"])
    assert response.score == 1.0


def test_eval_passes_base_url_and_api_key_env(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, dict[str, Any]]] = []

    def fake_build(model: str, **kwargs: Any) -> Any:
        calls.append((model, kwargs))
        raise UserError("stop here")

    monkeypatch.setattr(catalog, "build_runner", fake_build)
    code, _, _ = run_cli(
        "eval",
        "--model",
        "openai:my-model",
        "--task",
        "mini-qa",
        "--base-url",
        "http://127.0.0.1:9/v1",
        "--api-key-env",
        "LOCAL_KEY",
        "--no-progress",
        capsys=capsys,
    )
    assert code == 2
    assert calls == [
        (
            "openai:my-model",
            {
                "seed": 0,
                "overrides": {"base_url": "http://127.0.0.1:9/v1", "api_key_env": "LOCAL_KEY"},
            },
        )
    ]


# ----------------------------------------------------------------------------- vLLM payloads


def test_vllm_conversation_carries_pil_images_in_place(tmp_path: Path) -> None:
    image = write_image(tmp_path / "face.png", size=(64, 48))
    convo = vllm_runner.conversation(request(image), max_image_side=32)
    assert [m["role"] for m in convo] == ["system", "user"]
    assert convo[0]["content"] == [{"type": "text", "text": "You judge portraits."}]
    picture, text = convo[1]["content"]
    assert picture["type"] == "image_pil"
    assert picture["image_pil"].mode == "RGB" and picture["image_pil"].size == (32, 24)
    assert text == {"type": "text", "text": "Rate the quality."}
    full = vllm_runner.conversation(request(image))
    assert full[1]["content"][0]["image_pil"].size == (64, 48)


def test_vllm_engine_options() -> None:
    identity = ModelIdentity(alias="a", runner="vllm", model_id="o/m", revision="c" * 40)
    options = vllm_runner.engine_options(
        identity,
        revision=None,
        dtype="bfloat16",
        max_model_len=None,
        tensor_parallel_size=2,
        gpu_memory_utilization=0.8,
        limit_mm_per_prompt=2,
        load_format="dummy",
        min_pixels=None,
        max_pixels=1003520,
        trust_remote_code=True,
        seed=0,
        extra={"enforce_eager": True},
    )
    assert options["model"] == "o/m"
    assert options["revision"] == options["tokenizer_revision"] == "c" * 40
    assert options["limit_mm_per_prompt"] == {"image": 2}
    assert options["mm_processor_kwargs"] == {"max_pixels": 1003520}
    assert options["enforce_eager"] is True and options["load_format"] == "dummy"
    assert "max_model_len" not in options


def test_vllm_sampling_options_follow_the_task() -> None:
    greedy = vllm_runner.sampling_options(GenerationConfig(stop=("\n\n",)), "ab" * 32)
    assert greedy == {"max_tokens": 128, "temperature": 0.0, "top_p": 1.0, "stop": ["\n\n"]}
    sampled = vllm_runner.sampling_options(
        GenerationConfig(temperature=0.7, top_p=0.9, max_new_tokens=5), "00000010" + "0" * 56
    )
    assert sampled["seed"] == 16 and sampled["top_p"] == 0.9 and sampled["max_tokens"] == 5
    assert vllm_runner.scoring_options([5, 6]) == {
        "max_tokens": 1,
        "temperature": 0.0,
        "logprobs": vllm_runner.TOP_LOGPROBS,
        "allowed_token_ids": [5, 6],
    }


def test_vllm_level_response_renormalises_over_the_levels_found() -> None:
    levels_, ids, weights = ["1", "2", "3"], [11, 12, 13], [0.0, 50.0, 100.0]
    top = {11: math.log(0.1), 12: math.log(0.2), 13: math.log(0.1), 99: math.log(0.5)}
    full = vllm_runner.level_response(top, ids, levels_, weights, input_tokens=7)
    assert full.score == pytest.approx(0.25 * 0 + 0.5 * 50 + 0.25 * 100)
    assert full.text == "2" and full.usage is not None and full.usage.input_tokens == 7
    assert full.logprobs is not None
    assert sum(math.exp(v) for v in full.logprobs.values()) == pytest.approx(1.0)
    expected = levels.log_softmax([top[11], top[12], top[13]])
    assert list(full.logprobs.values()) == pytest.approx(expected)

    partial = vllm_runner.level_response({12: -1.0, 13: -1.0}, ids, levels_, weights)
    assert partial.score == pytest.approx(75.0) and set(partial.logprobs or {}) == {"2", "3"}
    assert vllm_runner.level_response({99: -0.1}, ids, levels_, weights).error


class FakeLLM:
    """vllm.LLM's chat: echoes the user's text; a prompt containing BOOM fails its whole call."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def chat(self, conversations: list[Any], sampling_params: Any, use_tqdm: bool) -> list[Any]:
        self.calls.append(len(conversations))
        texts = [c[-1]["content"][-1]["text"] for c in conversations]
        if any("BOOM" in t for t in texts):
            raise ValueError("prompt too long\nmore detail")
        return [self._output(t, sampling_params) for t in texts]

    @staticmethod
    def _output(text: str, params: Any) -> Any:
        if isinstance(params, dict) and params.get("allowed_token_ids"):
            step = {11: SimpleNamespace(logprob=-2.0), 12: SimpleNamespace(logprob=-1.0)}
            completion = SimpleNamespace(text="2", token_ids=[12], logprobs=[step])
        else:
            completion = SimpleNamespace(text=f"echo {text}", token_ids=[1, 2, 3], logprobs=None)
        return SimpleNamespace(prompt_token_ids=[0] * 10, outputs=[completion])

    def get_tokenizer(self) -> Any:
        return SimpleNamespace(encode=lambda text, add_special_tokens=False: [10 + int(text)])


def fake_vllm_runner(batch_size: int) -> vllm_runner.VLLMRunner:
    runner = object.__new__(vllm_runner.VLLMRunner)
    runner.identity = ModelIdentity(alias="v", runner="vllm", model_id="o/m")
    runner.batch_size = batch_size
    runner.max_image_side = None
    runner.llm = FakeLLM()
    runner.sampling_params = dict
    return runner


def test_vllm_runner_batches_and_fails_only_the_bad_request(tmp_path: Path) -> None:
    image = write_image(tmp_path / "face.png")
    good, bad = request(image, text="fine"), request(image, text="BOOM")
    missing = request(tmp_path / "gone.png", text="no image")
    runner = fake_vllm_runner(batch_size=2)
    answers = {r.key: resp for r, resp in runner.generate([good, bad, missing])}
    assert answers[good.key].text == "echo fine"
    assert answers[good.key].usage == Usage(input_tokens=10, output_tokens=3)
    assert answers[bad.key].error == "ValueError: prompt too long"
    assert "file not found" in str(answers[missing.key].error)
    assert runner.llm.calls == [2, 1, 1]  # the failed pair, then one by one


def test_vllm_runner_scores_levels_from_logprobs(tmp_path: Path) -> None:
    runner = fake_vllm_runner(batch_size=8)
    ((_, response),) = runner.score_levels([request()], ["1", "2"], [0.0, 100.0])
    p2 = 1 / (1 + math.exp(-1.0))
    assert response.score == pytest.approx(100 * p2) and response.text == "2"


def test_vllm_runner_without_vllm_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)
    identity = ModelIdentity(alias="v", runner="vllm", model_id="o/m")
    with pytest.raises(MissingExtraError, match=re.escape("fiqabench[vllm]")):
        vllm_runner.VLLMRunner(identity)
