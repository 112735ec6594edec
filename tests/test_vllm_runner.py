"""VLLMRunner on a real vLLM engine: a tiny random Qwen2-VL built in code, on a CUDA GPU.

Skipped where vLLM is not installed (its payload building, batching and level scoring are tested
with a fake engine in tests/test_catalog.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("vllm")
torch = pytest.importorskip("torch")

from fiqabench.benchmark.schema import (  # noqa: E402
    GenerationConfig,
    ImagePart,
    Message,
    Request,
    TextPart,
)
from fiqabench.runners.base import LevelScorer, ModelIdentity  # noqa: E402
from fiqabench.runners.vllm_runner import VLLMRunner  # noqa: E402
from tests.conftest import write_image  # noqa: E402

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="vLLM needs a CUDA GPU")


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> VLLMRunner:
    from tests.tiny_vlms import build_qwen2_vl

    folder = build_qwen2_vl(tmp_path_factory.mktemp("qwen2-vl"))
    identity = ModelIdentity(alias="tiny", runner="vllm", model_id=str(folder))
    return VLLMRunner(
        identity,
        dtype="float32",
        max_model_len=1024,
        gpu_memory_utilization=0.3,
        batch_size=2,
        enforce_eager=True,
    )


def request(image: Path, text: str) -> Request:
    return Request(
        key=f"{abs(hash(text)):064x}"[-64:],
        sample_id=text,
        task="t",
        messages=(
            Message(
                role="user",
                content=(ImagePart(path=str(image), sha256="0" * 64), TextPart(text=text)),
            ),
        ),
        generation=GenerationConfig(max_new_tokens=4),
    )


def test_generates_text_for_every_request(runner: VLLMRunner, tmp_path: Path) -> None:
    image = write_image(tmp_path / "f.png", size=(56, 56))
    requests = [request(image, f"Rate {i}.") for i in range(3)]
    answers = list(runner.generate(requests))
    assert sorted(r.key for r, _ in answers) == sorted(r.key for r in requests)
    for _, response in answers:
        assert response.ok and response.usage is not None
        assert 1 <= response.usage.output_tokens <= 4


def test_scores_levels_from_logprobs(runner: VLLMRunner, tmp_path: Path) -> None:
    assert isinstance(runner, LevelScorer)
    image = write_image(tmp_path / "f.png", size=(56, 56))
    levels = ["1", "2", "3", "4", "5"]
    ((_, response),) = runner.score_levels([request(image, "Level?")], levels)
    assert response.ok and response.score is not None and 1.0 <= response.score <= 5.0
    assert response.text in levels
