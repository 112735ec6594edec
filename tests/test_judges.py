"""LLM judge and extractor, through the real OpenAI SDK against a server on loopback."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fiqabench.benchmark.rescore import rescore_run, score_predictions
from fiqabench.benchmark.results import read_results, read_samples, write_results, write_samples
from fiqabench.benchmark.schema import ModelIdentity
from fiqabench.benchmark.store import RecordStore
from fiqabench.judges.agreement import (
    CALIBRATION_LABELS,
    cohen_kappa,
    krippendorff_alpha,
    read_labels,
)
from fiqabench.judges.judging import Judging
from fiqabench.judges.llm import LLMJudge, Price, parse_judge_score
from fiqabench.runners.openai_runner import OpenAIRunner
from fiqabench.tasks.registry import TaskRegistry
from tests.conftest import TaskFolderFactory, qa_item
from tests.loopback_server import USAGE, Answer, LoopbackServer, Status
from tests.test_cli import run_cli

KEY_ENV = "FIQABENCH_TEST_JUDGE_KEY"
FAST: dict[str, Any] = {"timeout_s": 5.0, "max_retries": 1, "retry_backoff_s": 0.01}

ITEMS = [
    qa_item(1, "open", answer="The portrait is sharp."),
    qa_item(2, "open", answer="The portrait is noisy."),
    qa_item(3, "open", answer="The portrait is dark."),
    qa_item(4, "describe", answer="The portrait is blurred and too dark."),
    qa_item(5, "single"),
    qa_item(6, "single"),
    qa_item(7, "tf"),
]
RESPONSES = {
    "q00001": "ANSWER-GOOD it is sharp",
    "q00002": "ANSWER-MIXED it is grainy",
    "q00003": "ANSWER-GARBLE something",
    "q00004": "DESC-X blurred",
    "q00005": "Honestly it is hard to say (xb1).",
    "q00006": "No idea at all (xn1).",
    "q00007": "false",
}


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("Score: 2", 2),
        ("score: 0", 0),
        ("**Score:** 1", 1),
        ("Score = 2/2", 2),
        ("The answer covers everything.\nScore: 2", 2),
        ("<think>Score: 0? no.</think>Score: 2", 2),
        ("1", 1),
        ("**2**", 2),
        ("Score: 2.0", 2),
        ("2.", 2),
        ("Score: 3", None),
        ("Score: 1.5", None),
        ("Score: 1 ... actually Score: 2", None),
        ("I would give it a good mark.", None),
        ("", None),
        ("12", None),
    ],
)
def test_parse_judge_score(reply: str, expected: int | None) -> None:
    assert parse_judge_score(reply) == expected


def test_cohen_kappa_worked_example() -> None:
    # Wikipedia's example: 50 applications, 20 yes/yes, 15 no/no, 5 yes/no, 10 no/yes; p_o = 0.7,
    # p_e = 0.5, kappa = 0.4.
    a = [1] * 20 + [0] * 15 + [1] * 5 + [0] * 10
    b = [1] * 20 + [0] * 15 + [0] * 5 + [1] * 10
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert cohen_kappa([2, 2], [2, 2]) is None  # chance agreement 1: undefined


def _ordinal_alpha(a: list[int], b: list[int]) -> float:
    """Krippendorff's ordinal alpha for two coders, from the coincidence matrix by hand."""
    values = sorted(set(a) | set(b))
    o = {(c, k): 0.0 for c in values for k in values}
    for x, y in zip(a, b, strict=True):
        o[x, y] += 1
        o[y, x] += 1
    n_c = {c: sum(o[c, k] for k in values) for c in values}
    n = sum(n_c.values())

    def delta2(c: int, k: int) -> float:
        low, high = min(c, k), max(c, k)
        between = sum(n_c[g] for g in values if low <= g <= high)
        return (between - (n_c[c] + n_c[k]) / 2) ** 2

    observed = sum(o[c, k] * delta2(c, k) for c in values for k in values)
    expected = sum(n_c[c] * n_c[k] * delta2(c, k) for c in values for k in values) / (n - 1)
    return 1 - observed / expected


def test_krippendorff_alpha_matches_hand_computation() -> None:
    human = [0, 0, 1, 1, 2, 2, 2, 1, 0, 2]
    judge = [0, 1, 1, 2, 2, 2, 1, 1, 0, 2]
    assert krippendorff_alpha(human, judge) == pytest.approx(_ordinal_alpha(human, judge))
    assert krippendorff_alpha(human, human) == pytest.approx(1.0)
    assert krippendorff_alpha([1, 1], [1, 1]) is None


def test_calibration_set_is_balanced_and_valid() -> None:
    labels = read_labels(CALIBRATION_LABELS)
    assert [sum(item.label == s for item in labels) for s in (0, 1, 2)] == [10, 10, 10]
    assert all(item.note for item in labels)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackServer]:
    monkeypatch.setenv(KEY_ENV, "sk-judge-test")
    with LoopbackServer() as running:
        running.script("ANSWER-GOOD", then=Answer("Score: 2"))
        mixed = ["Score: 2", "Score: 1", "I cannot decide", "Score: 0", "**Score:** 1"]
        running.script("ANSWER-MIXED", *map(Answer, mixed), then=Answer("Score: 2"))
        running.script("ANSWER-GARBLE", then=Answer("It is a fine answer."))
        running.script("Criterion: completeness", then=Answer("Score: 2"))
        running.script("Criterion: precision", then=Answer("Score: 1"))
        running.script("Criterion: relevance", then=Answer("Score: 2"))
        running.script("(xb1)", then=Answer("B"))
        running.script("(xn1)", then=Answer("none"))
        yield running


def _runner(server: LoopbackServer, **settings: Any) -> OpenAIRunner:
    identity = ModelIdentity(alias="openai:judge", runner="openai", model_id="judge")
    return OpenAIRunner(
        identity, base_url=f"{server.url}/v1", api_key_env=KEY_ENV, **{**FAST, **settings}
    )


def _judging(server: LoopbackServer, store: RecordStore) -> Judging:
    return Judging(
        judge=LLMJudge(_runner(server), store, rounds=5, price=Price.parse("1,2")),
        extractor=LLMJudge(_runner(server), store, role="extractor", rounds=1, temperature=0),
    )


def _predictions(tmp_path: Path, responses: dict[str, str]) -> Path:
    path = tmp_path / "predictions.jsonl"
    lines = [json.dumps({"sample_id": k, "response": v}) for k, v in responses.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_judge_rounds_unparseable_extractor_and_cache(
    server: LoopbackServer, task_folder: TaskFolderFactory, tmp_path: Path
) -> None:
    task = TaskRegistry([task_folder(ITEMS)]).get("ext-qa")
    predictions = _predictions(tmp_path, RESPONSES)
    with RecordStore(tmp_path / "judge.sqlite") as store:
        results, records = score_predictions(task, predictions, judging=_judging(server, store))
    by_id = {r.sample_id: r for r in records}

    assert by_id["q00001"].status == "ok" and by_id["q00001"].score == 1.0
    mixed = by_id["q00002"]  # valid rounds 2, 1, 0, 1: mean 1.0, item score 0.5
    assert mixed.score == 0.5 and mixed.parse_stage == "llm-judge"
    assert sorted(mixed.parsed["judge_scores"], key=str) == [0, 1, 1, 2, None]
    garbled = by_id["q00003"]
    assert garbled.status == "unscored" and garbled.parse_stage == "llm-judge-unparseable"
    assert garbled.score is None and len(garbled.parsed["judge_replies"]) == 5
    described = by_id["q00004"]
    assert described.parsed["criteria"] == {"completeness": 2, "precision": 1, "relevance": 2}
    assert described.score == pytest.approx(5 / 6)
    assert by_id["q00005"].parsed == "B" and by_id["q00005"].correct is True
    assert by_id["q00005"].parse_stage == "llm-extractor" and by_id["q00005"].status == "ok"
    assert by_id["q00006"].status == "parse_fail"
    assert by_id["q00006"].parse_stage == "llm-extractor-none"
    assert by_id["q00007"].parse_stage not in ("llm-extractor", "llm-extractor-none")

    entry = results.results["ext-qa"]
    assert entry.metrics["open_score"] == pytest.approx(0.75)
    assert entry.metrics["accuracy"] == pytest.approx(2 / 3)  # B right, none wrong, false right
    assert entry.metrics["describe_score"] == pytest.approx(5.0)
    by_type = entry.breakdowns["type"]
    assert by_type["describe"]["describe_score"] == pytest.approx(5.0)
    assert by_type["open"]["open_score"] == pytest.approx(0.75)
    assert by_type["open"]["describe_score"] is None
    assert entry.metrics["describe_precision"] == pytest.approx(1.0)
    assert entry.counts["judge_unparseable"] == 1 and entry.counts["unscored"] == 1
    assert entry.judge == "rules-v1+judge=openai:judge+extractor=openai:judge"
    judge, extractor = entry.judges
    assert (judge.role, judge.rounds, judge.n_calls, judge.n_cached) == ("judge", 5, 30, 0)
    assert (judge.input_tokens, judge.output_tokens) == (30 * USAGE[0], 30 * USAGE[1])
    assert judge.cost_usd == pytest.approx((300 * 1 + 150 * 2) / 1e6)
    assert judge.n_unparseable == 1 and set(judge.template_sha256) == {
        "describe-v1.j2",
        "open-v1.j2",
    }
    assert (extractor.role, extractor.n_calls, extractor.n_unparseable) == ("extractor", 2, 1)
    assert len(server.hits) == 32

    # The same judging again is served from the record store: no new calls, same numbers.
    with RecordStore(tmp_path / "judge.sqlite") as store:
        again, _ = score_predictions(task, predictions, judging=_judging(server, store))
    assert len(server.hits) == 32
    assert again.results["ext-qa"].metrics == entry.metrics
    assert again.results["ext-qa"].judges[0].n_cached == 30


def test_failed_judge_calls_are_errors_and_retried_next_time(
    server: LoopbackServer, task_folder: TaskFolderFactory, tmp_path: Path
) -> None:
    task = TaskRegistry([task_folder(ITEMS[:2])]).get("ext-qa")
    server.script("ANSWER-GOOD", Status(500), Status(500), then=Answer("Score: 2"))
    predictions = _predictions(tmp_path, {k: RESPONSES[k] for k in ("q00001", "q00002")})
    store = RecordStore(tmp_path / "judge.sqlite")
    judging = Judging(judge=LLMJudge(_runner(server), store, rounds=1))
    results, records = score_predictions(task, predictions, judging=judging)
    failed = records[0]
    assert failed.status == "error" and "judge openai:judge" in (failed.error or "")
    assert failed.score is None  # an infrastructure failure is never a score
    assert results.results["ext-qa"].counts["error"] == 1
    assert results.results["ext-qa"].judges[0].n_errors == 1

    results, records = score_predictions(task, predictions, judging=judging)
    assert records[0].status == "ok" and records[0].score == 1.0
    assert results.results["ext-qa"].judges[0].n_cached == 1  # the other item was kept
    store.close()


def test_rescoring_a_run_keeps_or_redoes_judge_verdicts(
    server: LoopbackServer, task_folder: TaskFolderFactory, tmp_path: Path
) -> None:
    folder = task_folder(ITEMS)
    registry = TaskRegistry([folder])
    task = registry.get("ext-qa")
    run = tmp_path / "run"
    with RecordStore(tmp_path / "judge.sqlite") as store:
        judging = _judging(server, store)
        results, records = score_predictions(
            task, _predictions(tmp_path, RESPONSES), judging=judging
        )
    results.manifest.include_paths = [str(folder)]
    write_samples(run, records)
    write_results(run, results)

    # No judge: the rules run again and every verdict the judge or extractor gave stands.
    kept, kept_records = rescore_run(run, registry)
    assert kept.results["ext-qa"].metrics == results.results["ext-qa"].metrics
    assert kept.results["ext-qa"].judges == results.results["ext-qa"].judges
    assert [r.score for r in kept_records] == [r.score for r in records]

    # With a judge again: replies come from the store, not the server.
    hits = len(server.hits)
    with RecordStore(tmp_path / "judge.sqlite") as store:
        rejudged, _ = rescore_run(run, registry, judging=_judging(server, store))
    assert len(server.hits) == hits
    assert rejudged.results["ext-qa"].metrics == results.results["ext-qa"].metrics


def test_cli_eval_then_rejudge_a_saved_run(
    task_folder: TaskFolderFactory,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-judge-test")
    folder = task_folder(ITEMS[:3] + ITEMS[4:])
    run = tmp_path / "run"
    code, stdout, _ = run_cli(
        "eval", "--model", "random", "--task", "ext-qa", "--include-path", folder,
        "--output-dir", run, "--no-progress", capsys=capsys,
    )  # fmt: skip
    assert code == 0 and "score them with an LLM judge" in stdout
    assert read_results(run).results["ext-qa"].metrics["open_score"] is None

    with LoopbackServer(answer=lambda prompt: "Score: 2") as judge_server:
        code, stdout, _ = run_cli(
            "score", "--run", run, "--judge", "openai:judge-model",
            "--judge-base-url", f"{judge_server.url}/v1", "--judge-api-key-env", KEY_ENV,
            "--judge-rounds", "2", "--judge-price", "0.5,1.5", capsys=capsys,
        )  # fmt: skip
        assert code == 0, stdout
        assert len(judge_server.hits) == 3 * 2
        assert {hit.body["model"] for hit in judge_server.hits} == {"judge-model"}
    entry = read_results(run).results["ext-qa"]
    assert entry.metrics["open_score"] == 1.0 and entry.counts["unscored"] == 0
    assert entry.judges[0].model.alias == "openai:judge-model" and entry.judges[0].rounds == 2
    assert entry.judges[0].cost_usd == pytest.approx((60 * 0.5 + 30 * 1.5) / 1e6)
    saved = {r.sample_id: r for r in read_samples(run)}
    assert saved["q00001"].parsed["judge_scores"] == [2, 2]


def _perfect_judge(labels: dict[str, int]) -> Any:
    def answer(prompt: str) -> str:
        match = re.search(r"^Answer to evaluate: (.*)$", prompt, re.MULTILINE)
        assert match is not None
        return f"Score: {labels[match.group(1)]}"

    return answer


def test_cli_judge_agreement_on_the_calibration_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-judge-test")
    labels = {item.response: item.label for item in read_labels(CALIBRATION_LABELS)}
    report = tmp_path / "agreement.json"
    with LoopbackServer(answer=_perfect_judge(labels)) as judge_server:
        code, stdout, _ = run_cli(
            "judge-agreement", "--judge", "openai:perfect", "--judge-rounds", "1",
            "--judge-base-url", f"{judge_server.url}/v1", "--judge-api-key-env", KEY_ENV,
            "--cache-db", tmp_path / "a.sqlite", "--output", report, capsys=capsys,
        )  # fmt: skip
    assert code == 0, stdout
    perfect = json.loads(report.read_text())
    assert perfect["accuracy"] == 1.0 and perfect["cohen_kappa"] == pytest.approx(1.0)
    assert perfect["krippendorff_alpha_ordinal"] == pytest.approx(1.0)
    assert perfect["confusion"] == [[10, 0, 0], [0, 10, 0], [0, 0, 10]]
    assert "Cohen's kappa" in stdout

    # A lenient judge that always says 2: right on a third, kappa 0 (no better than chance).
    with LoopbackServer(answer=lambda prompt: "Score: 2") as judge_server:
        code, _, _ = run_cli(
            "judge-agreement", "--judge", "openai:lenient", "--judge-rounds", "1",
            "--judge-base-url", f"{judge_server.url}/v1", "--judge-api-key-env", KEY_ENV,
            "--cache-db", tmp_path / "b.sqlite", "--output", report, capsys=capsys,
        )  # fmt: skip
    lenient = json.loads(report.read_text())
    assert lenient["accuracy"] == pytest.approx(1 / 3) and lenient["cohen_kappa"] == 0.0
    human = [label for label in labels.values()]
    assert lenient["krippendorff_alpha_ordinal"] == pytest.approx(
        _ordinal_alpha(human, [2] * len(human))
    )


def test_cli_eval_with_judge_and_extractor(
    task_folder: TaskFolderFactory,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-judge-test")
    folder = task_folder(ITEMS[:3])
    run = tmp_path / "run"
    with LoopbackServer(answer=lambda prompt: "Score: 1") as judge_server:
        args = (
            "eval", "--model", "random", "--task", "ext-qa", "--include-path", folder,
            "--output-dir", run, "--no-progress", "--judge", "openai:j", "--extractor",
            "openai:x", "--judge-base-url", f"{judge_server.url}/v1",
            "--judge-api-key-env", KEY_ENV,
        )  # fmt: skip
        code, stdout, _ = run_cli(*args, capsys=capsys)
        assert code == 0, stdout
        assert len(judge_server.hits) == 3 * 5  # random answers always parse: no extraction
        code, _, _ = run_cli(*args, capsys=capsys)  # resumed: every judge reply is stored
        assert code == 0 and len(judge_server.hits) == 15
    entry = read_results(run).results["ext-qa"]
    assert entry.metrics["open_score"] == 0.5 and entry.judge == "rules-v1+judge=openai:j"
    assert "open" in stdout and "50.0" in stdout


def test_stored_verdicts_are_recomputed_from_their_replies(
    server: LoopbackServer, task_folder: TaskFolderFactory, tmp_path: Path
) -> None:
    """Re-scoring without a judge replays the stored replies: a forged verdict does not stand."""
    folder = task_folder(ITEMS)
    registry = TaskRegistry([folder])
    task = registry.get("ext-qa")
    with RecordStore(tmp_path / "judge.sqlite") as store:
        results, records = score_predictions(
            task, _predictions(tmp_path, RESPONSES), judging=_judging(server, store)
        )
    results.manifest.include_paths = [str(folder)]
    forged = []
    for record in records:
        if record.sample_id == "q00003":  # unparseable judge replies, claimed a full score
            record = record.model_copy(update={"status": "ok", "score": 1.0})
        if record.sample_id == "q00006":  # the extractor said "none"; claimed right answer
            record = record.model_copy(
                update={"status": "ok", "parse_stage": "llm-extractor", "parsed": "B"}
            )
        if record.sample_id == "q00001":  # a judge stage with no replies at all
            record = record.model_copy(update={"parsed": {"judge_scores": [2, 2, 2, 2, 2]}})
        forged.append(record)
    run = tmp_path / "run"
    write_samples(run, forged)
    write_results(run, results)
    _, replayed = rescore_run(run, registry)
    by_id = {r.sample_id: r for r in replayed}
    assert by_id["q00003"].status == "unscored" and by_id["q00003"].score is None
    assert by_id["q00006"].status == "parse_fail" and by_id["q00006"].correct is False
    assert by_id["q00006"].parse_stage == "llm-extractor-none"
    assert by_id["q00001"].status == "unscored" and by_id["q00001"].score is None
    untouched = {r.sample_id: r for r in records}
    for sample_id in ("q00002", "q00004", "q00005"):
        assert by_id[sample_id] == untouched[sample_id]
