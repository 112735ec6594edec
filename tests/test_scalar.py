"""Scalar face-quality tasks: variants, parsing, imputation, utility and MOS metrics."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from fiqabench.benchmark import evr
from fiqabench.benchmark.pipeline import Evaluation
from fiqabench.benchmark.results import ResultsFile, read_samples
from fiqabench.benchmark.schema import ModelIdentity, Request, Response
from fiqabench.benchmark.store import RecordStore
from fiqabench.tasks.registry import TaskRegistry
from tests.conftest import write_image

SPEC = """\
name: ext-fiqa
kind: scalar
protocol: fiqa-test-v1
data:
  jsonl: images.jsonl
scalar:
  variants: [simple, utility, levels]
  comparisons: comparisons.csv
  mos: mos.csv
  bootstrap: 100
"""
N_IMAGES = 8
SCORES = [90.0, 80.0, 70.0, 60.0, 50.0, 40.0, 30.0, None]  # the last image gets no parseable score


class TableRunner:
    """Answers each variant in its own format, from a fixed table of image scores."""

    identity = ModelIdentity(alias="table", runner="test", model_id="table")

    def generate(self, requests: Sequence[Request]) -> Iterator[tuple[Request, Response]]:
        for request in requests:
            image_id, variant = request.sample_id.split("@")
            value = SCORES[int(image_id.removeprefix("img").removesuffix(".png"))]
            if value is None:
                text = "I cannot assess this image."
            elif variant == "levels":
                text = str(1 + round(value / 100 * 6))
            else:
                assert request.answer_space is not None and request.answer_space.key
                text = f'```json\n{{"{request.answer_space.key}": {value}}}\n```'
            yield request, Response(text=text)

    def close(self) -> None:
        return None


@pytest.fixture
def fiqa_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "fiqa"
    folder.mkdir()
    rows = []
    for index in range(N_IMAGES):
        write_image(folder / f"img{index}.png", seed=index)
        rows.append(
            {"id": f"img{index}.png", "image": f"img{index}.png", "subject": f"p{index % 2}"}
        )
    (folder / "images.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    rng = np.random.default_rng(0)
    lines = ["a,b,mated,similarity_m1,similarity_m2"]
    for i in range(N_IMAGES):
        for j in range(i + 1, N_IMAGES):
            mated = (i % 2) == (j % 2)
            base = 0.6 if mated else 0.1
            lines.append(
                f"img{i}.png,img{j}.png,{int(mated)},"
                f"{base + rng.normal(0, 0.2):.4f},{base + rng.normal(0, 0.2):.4f}"
            )
    (folder / "comparisons.csv").write_text("\n".join(lines) + "\n")
    mos = ["image,mos"] + [f"img{i}.png,{100 - 10 * i + (i % 3)}" for i in range(N_IMAGES)]
    (folder / "mos.csv").write_text("\n".join(mos) + "\n")
    (folder / "fiqa.yaml").write_text(SPEC)
    return folder


def run(folder: Path, out: Path) -> ResultsFile:
    task = TaskRegistry([folder]).get("ext-fiqa")
    with RecordStore(out / "records.sqlite") as store:
        return Evaluation(runner=TableRunner(), store=store, output_dir=out).run([task])


def test_variants_are_kept_apart_with_their_prompts(fiqa_folder: Path, tmp_path: Path) -> None:
    results = run(fiqa_folder, tmp_path / "run")
    assert set(results.results) == {
        "ext-fiqa:simple",
        "ext-fiqa:utility",
        "ext-fiqa:levels",
        "ext-fiqa:consistency",
    }
    simple, utility = results.results["ext-fiqa:simple"], results.results["ext-fiqa:utility"]
    assert simple.prompt_template_sha256["user"] != utility.prompt_template_sha256["user"]
    assert simple.counts == {"ok": 7, "parse_fail": 1, "error": 0, "unscored": 0, "total": 8}
    assert simple.metrics["coverage"] == pytest.approx(7 / 8)
    assert simple.judge == "scores-v1"
    records = [r for r in read_samples(tmp_path / "run") if r.meta["variant"] == "levels"]
    scored = {r.meta["image_id"]: r.score for r in records if r.status == "ok"}
    assert scored["img0.png"] == pytest.approx(100 * (1 + round(0.9 * 6) - 1) / 6)


def test_utility_metrics_impute_the_lowest_quality(fiqa_folder: Path, tmp_path: Path) -> None:
    entry = run(fiqa_folder, tmp_path / "run").results["ext-fiqa:simple"]
    assert entry.metrics["imputed_images"] == 1
    table = [line.split(",") for line in (fiqa_folder / "comparisons.csv").read_text().split()[1:]]
    quality = {f"img{i}.png": (s if s is not None else 29.0) for i, s in enumerate(SCORES)}
    expected = evr.average_over_models(
        {"m1": [float(r[3]) for r in table], "m2": [float(r[4]) for r in table]},
        [r[2] == "1" for r in table],
        quality_a=[quality[r[0]] for r in table],
        quality_b=[quality[r[1]] for r in table],
    )
    for key in ("iso_edc_pauc_20", "vlm4fiqa_evr_pauc_20", "iso_edc_auc", "fnmr_at_fmr"):
        assert entry.metrics[key] == pytest.approx(expected.metrics[key])
    assert any(name.startswith("iso_edc/") for name in entry.curves)
    assert entry.details["utility"]["fr_models"] == ["m1", "m2"]


def test_mos_correlation_over_scored_images(fiqa_folder: Path, tmp_path: Path) -> None:
    entry = run(fiqa_folder, tmp_path / "run").results["ext-fiqa:simple"]
    mos = [100 - 10 * i + (i % 3) for i in range(7)]
    assert entry.metrics["mos_n"] == 7
    assert entry.metrics["srocc"] == pytest.approx(stats.spearmanr(SCORES[:7], mos).statistic)
    assert entry.ci95["srocc"] is not None


def test_cross_prompt_consistency_against_simple(fiqa_folder: Path, tmp_path: Path) -> None:
    entry = run(fiqa_folder, tmp_path / "run").results["ext-fiqa:consistency"]
    assert entry.metrics["utility_pearson"] == pytest.approx(1.0)
    assert entry.metrics["utility_mae"] == pytest.approx(0.0)
    assert entry.metrics["utility_n"] == 7
    assert entry.protocol == "cross-prompt-consistency/1"


class LevelRunner(TableRunner):
    """Reads 'probabilities' of the level digits: a known distribution per image."""

    def score_levels(
        self, requests: Sequence[Request], levels: Sequence[str], weights: Sequence[float] | None
    ) -> Iterator[tuple[Request, Response]]:
        assert weights is not None and list(levels) == [str(k) for k in range(1, 8)]
        for request in requests:
            index = int(request.sample_id.split("@")[0].removeprefix("img").removesuffix(".png"))
            probabilities = np.zeros(len(levels))
            probabilities[index % 7] = 0.5
            probabilities[(index + 1) % 7] = 0.5
            yield request, Response(score=float(probabilities @ np.asarray(weights)))


def test_logit_scoring_uses_the_level_expectation(fiqa_folder: Path, tmp_path: Path) -> None:
    task = TaskRegistry([fiqa_folder]).get("ext-fiqa")
    task.use_variants(["levels"])  # type: ignore[attr-defined]
    out = tmp_path / "run"
    with RecordStore(out / "records.sqlite") as store:
        results = Evaluation(runner=LevelRunner(), store=store, output_dir=out, logits=True).run(
            [task]
        )
    entry = results.results["ext-fiqa:levels"]
    assert entry.protocol == "fiqa-test-v1+level-logits"
    assert results.manifest.scoring == "logits"
    records = {r.meta["image_id"]: r for r in read_samples(out)}
    # Image 2: half on level 3, half on level 4 -> (33.33 + 50) / 2 on the 0-100 scale.
    assert records["img2.png"].score == pytest.approx((100 * 2 / 6 + 100 * 3 / 6) / 2)
    assert records["img2.png"].parse_stage == "direct"


def test_logit_scoring_needs_a_runner_that_reads_probabilities(
    fiqa_folder: Path, tmp_path: Path
) -> None:
    from fiqabench.errors import UserError

    task = TaskRegistry([fiqa_folder]).get("ext-fiqa")
    task.use_variants(["levels"])  # type: ignore[attr-defined]
    with (
        RecordStore(tmp_path / "records.sqlite") as store,
        pytest.raises(UserError, match="cannot read next-token probabilities"),
    ):
        Evaluation(runner=TableRunner(), store=store, output_dir=tmp_path, logits=True).run([task])


def test_comparisons_naming_unknown_images_are_refused(fiqa_folder: Path, tmp_path: Path) -> None:
    from fiqabench.errors import UserError

    with (fiqa_folder / "comparisons.csv").open("a") as handle:
        handle.write("img0.png,ghost.png,0,0.1,0.1\n")
    with pytest.raises(UserError, match="1 compared image\\(s\\) are not in the task's images"):
        run(fiqa_folder, tmp_path / "run")
