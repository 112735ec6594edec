"""Model-based scoring of Q&A records: a judge for free-text answers, an extractor for the rest.

The judge scores open-ended answers (rubric `open-v1`, one score 0/1/2 per round) and quality
descriptions (rubric `describe-v1`: completeness, precision and relevance, 0/1/2 each per round)
against the item's reference. The extractor reads closed answers (single, multi, true/false)
that the rule cascade could not parse; it may answer "none".

Outcomes, by `parse_stage`:
- `llm-judge`: scored; `score` = mean of the valid judgements / 2 (a description: the mean of
  its three criteria's means / 2), `parsed` keeps every round's score and reply.
- `llm-judge-unparseable`: no round gave a valid score; the record stays `unscored`.
- `llm-extractor`: the extractor's reply parsed; status `ok`, `correct` set.
- `llm-extractor-none`: the extractor found no answer (or one the rules cannot read); the
  record stays a parse failure, so it still counts as wrong.
A judge call that failed (after the runner's own retries) makes the record an `error`: an
infrastructure failure is never a score, and the next run retries only what failed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import fmean
from typing import Any

from fiqabench.benchmark.results import JudgeInfo, TaskResults
from fiqabench.benchmark.schema import DESCRIBE_CRITERIA, JUDGED_TYPES, QAItem, Record, Response
from fiqabench.judges import rules
from fiqabench.judges.llm import (
    DESCRIBE_TEMPLATE,
    EXTRACT_TEMPLATE,
    OPEN_TEMPLATE,
    JudgeCall,
    LLMJudge,
    parse_judge_score,
)
from fiqabench.tasks.base import Sample, Task
from fiqabench.tasks.qa import expected_answer

JUDGED = "llm-judge"
JUDGE_UNPARSEABLE = "llm-judge-unparseable"
EXTRACTED = "llm-extractor"
EXTRACTOR_NONE = "llm-extractor-none"
JUDGE_ROLE_STAGES = {
    "judge": frozenset({JUDGED, JUDGE_UNPARSEABLE}),
    "extractor": frozenset({EXTRACTED, EXTRACTOR_NONE}),
}
JUDGE_STAGES = JUDGE_ROLE_STAGES["judge"] | JUDGE_ROLE_STAGES["extractor"]
_NONE_REPLIES = frozenset({"none", "none.", '"none"', "n/a"})


@dataclass
class Judging:
    """The judge and the extractor of a run; either may be absent."""

    judge: LLMJudge | None = None
    extractor: LLMJudge | None = None

    def apply(self, task: Task, records: list[Record]) -> list[Record]:
        """Records with judge and extractor outcomes; other records are returned unchanged."""
        samples = {sample.id: sample for sample in task.samples()}
        items = {
            r.sample_id: samples[r.sample_id].item
            for r in records
            if r.sample_id in samples and isinstance(samples[r.sample_id].item, QAItem)
        }
        updated = {id(r): r for r in records}
        if self.judge is not None:
            judged = [r for r in records if _judgeable(r, items.get(r.sample_id))]
            for record, new in zip(judged, self._judge(task.name, judged, items), strict=True):
                updated[id(record)] = new
        if self.extractor is not None:
            unparsed = [r for r in records if _extractable(r, items.get(r.sample_id))]
            for record, new in zip(unparsed, self._extract(task, unparsed, samples), strict=True):
                updated[id(record)] = new
        return [updated[id(r)] for r in records]

    def annotate(self, entry: TaskResults) -> None:
        """Name in a result entry the models that scored its task, how, and at what cost."""
        found = [j.info(entry.task) for j in (self.judge, self.extractor) if j is not None]
        infos = [info for info in found if info is not None]
        if infos:
            entry.judges = infos
            entry.judge = judged_name(entry.judge, infos)

    def _judge(self, task: str, records: list[Record], items: dict[str, Any]) -> list[Record]:
        assert self.judge is not None
        calls: list[list[JudgeCall]] = [_judge_calls(r, items[r.sample_id]) for r in records]
        replies = self.judge.ask(task, [call for item_calls in calls for call in item_calls])
        results, start = [], 0
        unparseable = 0
        for record, item_calls in zip(records, calls, strict=True):
            own = replies[start : start + len(item_calls)]
            start += len(item_calls)
            new = _judged(record, items[record.sample_id], own, self.judge.alias)
            unparseable += new.parse_stage == JUDGE_UNPARSEABLE
            results.append(new)
        self.judge.count_unparseable(task, unparseable)
        return results

    def _extract(
        self, task: Task, records: list[Record], samples: dict[str, Sample]
    ) -> list[Record]:
        assert self.extractor is not None
        calls = []
        for record in records:
            item = samples[record.sample_id].item
            assert isinstance(item, QAItem)
            options = [
                {"letter": k, "text": t}
                for k, t in zip(item.letters, item.options or [], strict=True)
            ]
            variables = {
                "question": item.question,
                "options": options,
                "type": item.type,
                "response": record.response or "",
            }
            calls.append(JudgeCall(record.sample_id, EXTRACT_TEMPLATE, variables))
        replies = self.extractor.ask(task.name, calls)
        results = []
        for record, rounds in zip(records, replies, strict=True):
            item = samples[record.sample_id].item
            assert isinstance(item, QAItem)
            results.append(_extracted(record, item, rounds[0], self.extractor.alias))
        self.extractor.count_unparseable(
            task.name, sum(r.parse_stage == EXTRACTOR_NONE for r in results)
        )
        return results


def judged_name(rules: str, infos: Sequence[JudgeInfo]) -> str:
    """A result entry's `judge`: the rule set, then each model that scored, by role."""
    return "+".join([rules, *(f"{info.role}={info.model.alias}" for info in infos)])


def needs_role(record: Record, role: str) -> bool:
    """Whether a record is one the judge (or extractor) of its run should have read, and it
    has not: free text still unscored, or a closed answer the rules could not parse."""
    if role == "judge":
        return record.status == "unscored" and record.parse_stage is None
    return record.status == "parse_fail" and record.parse_stage not in JUDGE_STAGES


def _judgeable(record: Record, item: Any) -> bool:
    return (
        isinstance(item, QAItem)
        and item.type in JUDGED_TYPES
        and record.response is not None
        and (record.status != "error" or record.parse_stage == JUDGED)
    )


def _extractable(record: Record, item: Any) -> bool:
    return (
        isinstance(item, QAItem)
        and item.type not in JUDGED_TYPES
        and record.status == "parse_fail"
        and record.response is not None
    )


def _judge_calls(record: Record, item: QAItem) -> list[JudgeCall]:
    base = {"question": item.question, "reference": item.answer, "response": record.response}
    if item.type == "open":
        return [JudgeCall(record.sample_id, OPEN_TEMPLATE, base)]
    return [
        JudgeCall(record.sample_id, DESCRIBE_TEMPLATE, {**base, "criterion": criterion})
        for criterion in DESCRIBE_CRITERIA
    ]


def _judged(
    record: Record, item: QAItem, replies: Sequence[Sequence[Response]], judge: str
) -> Record:
    failed = [r.error for rounds in replies for r in rounds if not r.ok]
    if failed:
        message = f"judge {judge}: {len(failed)} call(s) failed: {failed[0]}"
        return _with(record, status="error", error=message, parse_stage=JUDGED, score=None)
    texts = [[r.text or "" for r in rounds] for rounds in replies]
    scores = [[parse_judge_score(text) for text in rounds] for rounds in texts]
    means = [mean_valid(rounds) for rounds in scores]
    if item.type == "open":
        parsed: dict[str, Any] = {"judge_scores": scores[0], "judge_replies": texts[0]}
    else:
        parsed = {
            "criteria": dict(zip(DESCRIBE_CRITERIA, means, strict=True)),
            "judge_scores": dict(zip(DESCRIBE_CRITERIA, scores, strict=True)),
            "judge_replies": dict(zip(DESCRIBE_CRITERIA, texts, strict=True)),
        }
    if any(mean is None for mean in means):
        return _with(
            record, status="unscored", parse_stage=JUDGE_UNPARSEABLE, parsed=parsed, score=None
        )
    score = fmean(m for m in means if m is not None) / 2
    return _with(record, status="ok", parse_stage=JUDGED, parsed=parsed, score=score)


def mean_valid(scores: Sequence[int | None]) -> float | None:
    valid = [s for s in scores if s is not None]
    return fmean(valid) if valid else None


def _extracted(record: Record, item: QAItem, reply: Response, extractor: str) -> Record:
    if not reply.ok:
        message = f"extractor {extractor}: call failed: {reply.error}"
        return _with(record, status="error", error=message, parse_stage=EXTRACTED)
    said = reply.text or ""
    text = rules.strip_think(said).strip()
    none = _with(record, parse_stage=EXTRACTOR_NONE, extractor_reply=said)
    if text.lower() in _NONE_REPLIES:
        return none
    options = item.options or []
    if item.type == "single":
        parsed = rules.parse_single(text, options)
    elif item.type == "multi":
        parsed = rules.parse_multi(text, options)
    else:
        parsed = rules.parse_tf(text)
    if not parsed.ok:
        return none
    return _with(
        record,
        status="ok",
        parse_stage=EXTRACTED,
        parsed=parsed.value,
        correct=parsed.value == expected_answer(item),
        extractor_reply=said,
    )


def replay_verdict(rescored: Record, saved: Record, item: QAItem) -> Record:
    """The verdict the judge or extractor replies stored in `saved` give, with no model call.

    `rescored` is the same response scored again by the rules. A stored verdict is never taken
    on trust: it is recomputed from the replies, so a record whose verdict does not follow from
    them (or that has none) comes out unscored or a parse failure. Failed judge calls stay errors.
    """
    if saved.status == "error":
        return saved
    if saved.parse_stage in (EXTRACTED, EXTRACTOR_NONE) and item.type not in JUDGED_TYPES:
        reply = Response(text=saved.extractor_reply or "")
        return _extracted(rescored, item, reply, "stored")
    if saved.parse_stage in (JUDGED, JUDGE_UNPARSEABLE) and item.type in JUDGED_TYPES:
        replies = _stored_replies(saved.parsed, item)
        if replies is None:
            return _with(rescored, parse_stage=JUDGE_UNPARSEABLE, parsed=None, score=None)
        responses = [[Response(text=text) for text in rounds] for rounds in replies]
        return _judged(rescored, item, responses, "stored")
    return rescored


def _stored_replies(parsed: Any, item: QAItem) -> list[list[str]] | None:
    """Each judge call's replies as `_judged` stored them, or None when they are not there."""
    replies = parsed.get("judge_replies") if isinstance(parsed, dict) else None
    if item.type == "describe":
        if not isinstance(replies, dict):
            return None
        replies = [replies.get(criterion) for criterion in DESCRIBE_CRITERIA]
    else:
        replies = [replies]
    valid = all(
        isinstance(rounds, list) and rounds and all(isinstance(t, str) for t in rounds)
        for rounds in replies
    )
    return replies if valid else None


def _with(record: Record, **changes: Any) -> Record:
    return record.model_copy(update=changes)
