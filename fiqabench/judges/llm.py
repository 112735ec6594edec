"""A language model that scores answers or extracts choices, reached through the Runner protocol.

Each judge call is a Request in the record store, keyed by the judge's identity, the rendered
prompt, the decoding settings and the round. Re-judging a run therefore reuses every reply
already received, a killed judging pass resumes, and a failed call is retried next time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import fiqabench
from fiqabench.benchmark.calls import NoProgress, ProgressSink, collect, content_key
from fiqabench.benchmark.results import JudgeInfo
from fiqabench.benchmark.schema import GenerationConfig, Message, Request, Response, TextPart
from fiqabench.benchmark.store import RecordStore
from fiqabench.errors import UserError
from fiqabench.judges.rules import strip_think
from fiqabench.runners.base import Runner
from fiqabench.tasks.templates import PromptTemplate, load_template

PROMPTS = Path(__file__).parent / "prompts"
OPEN_TEMPLATE = "open-v1.j2"
DESCRIBE_TEMPLATE = "describe-v1.j2"
EXTRACT_TEMPLATE = "extract-v1.j2"
JUDGE_SCORES = (0, 1, 2)

Role = Literal["judge", "extractor"]

# "Score: 2", "**Score:** 2", "score = 1", "Score: 2/2"; the number is checked afterwards.
_SCORE = re.compile(r"\bscore\b[\s:=*_`]*(\d+(?:\.\d+)?)", re.IGNORECASE)


def parse_judge_score(reply: str) -> int | None:
    """The 0/1/2 a judge gave, or None when the reply has no score, several, or one out of range.

    The rubric asks for `Score: N`; a reply that is only the digit is accepted too.
    """
    text = strip_think(reply)
    found = {match.group(1) for match in _SCORE.finditer(text)}
    if not found:
        bare = text.strip().strip("*`'\" ").rstrip(".")
        found = {bare} if re.fullmatch(r"\d+(?:\.\d+)?", bare) else set()
    values = {float(number) for number in found}  # "2" and "2.0" are one score
    if len(values) != 1:
        return None
    value = values.pop()
    return int(value) if value.is_integer() and int(value) in JUDGE_SCORES else None


@dataclass(frozen=True)
class Price:
    """US dollars per million tokens, as the provider bills them."""

    input_per_mtok: float
    output_per_mtok: float

    @classmethod
    def parse(cls, text: str) -> Price:
        try:
            first, second = (float(part) for part in text.split(","))
        except ValueError:
            raise UserError(
                f"price '{text}' is not INPUT,OUTPUT dollars per million tokens"
            ) from None
        if first < 0 or second < 0:
            raise UserError(f"price '{text}' is negative")
        return cls(first, second)

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.input_per_mtok + output_tokens * self.output_per_mtok) / 1e6


@dataclass(frozen=True)
class JudgeCall:
    """One question to the judge about one record: `template` rendered with `variables`."""

    item: str  # the record's sample id
    template: str
    variables: Mapping[str, object]


@dataclass
class Tally:
    n_calls: int = 0
    n_cached: int = 0
    n_errors: int = 0
    n_unparseable: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    templates: dict[str, str] = field(default_factory=dict)


@dataclass
class LLMJudge:
    """Asks `runner` each call `rounds` times; replies are cached in `store`."""

    runner: Runner
    store: RecordStore
    role: Role = "judge"
    rounds: int = 5
    temperature: float = 1.0
    max_new_tokens: int = 256
    price: Price | None = None
    progress: ProgressSink = field(default_factory=NoProgress)
    tallies: dict[str, Tally] = field(default_factory=dict)
    _templates: dict[str, PromptTemplate] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.rounds < 1:
            raise UserError("judge rounds must be at least 1")

    @property
    def alias(self) -> str:
        return self.runner.identity.alias

    def template(self, name: str) -> PromptTemplate:
        if name not in self._templates:
            self._templates[name] = load_template(name, PROMPTS)
        return self._templates[name]

    def ask(self, task: str, calls: Sequence[JudgeCall]) -> list[list[Response]]:
        """Each call's responses, one per round, in order; failed calls carry their error."""
        tally = self.tallies.setdefault(task, Tally())
        requests = [[self._request(task, call, r) for r in range(self.rounds)] for call in calls]
        flat = [request for rounds in requests for request in rounds]
        cached = self.store.get_many(request.key for request in flat)
        pending = list({r.key: r for r in flat if r.key not in cached}.values())
        label = f"{task} · {self.role}"
        self.progress.start(label, len(flat))
        self.progress.advance(label, len(flat) - len(pending))
        advance = lambda: self.progress.advance(label)  # noqa: E731
        fresh = collect(pending, self.runner.generate(pending), self.store, self.alias, advance)
        tally.n_calls += len(flat)
        tally.n_cached += sum(r.key in cached for r in flat)
        for response in fresh.values():
            if response.usage is not None:
                tally.input_tokens += response.usage.input_tokens
                tally.output_tokens += response.usage.output_tokens
        tally.n_errors += sum(not response.ok for response in fresh.values())
        for call in calls:
            tally.templates[call.template] = self.template(call.template).sha256
        return [[cached.get(r.key) or fresh[r.key] for r in rounds] for rounds in requests]

    def count_unparseable(self, task: str, n: int) -> None:
        self.tallies.setdefault(task, Tally()).n_unparseable += n

    def _request(self, task: str, call: JudgeCall, round_index: int) -> Request:
        text = self.template(call.template).render(**call.variables)
        messages = (Message(role="user", content=(TextPart(text=text),)),)
        generation = GenerationConfig(
            max_new_tokens=self.max_new_tokens, temperature=self.temperature
        )
        key = content_key(
            {
                "judge": self.runner.identity.fingerprint(),
                "role": self.role,
                "messages": [m.model_dump() for m in messages],
                "generation": generation.model_dump(),
                "round": round_index,
                "harness": fiqabench.__version__,
            }
        )
        return Request(
            key=key,
            sample_id=call.item,
            task=f"{task}/{self.role}",
            messages=messages,
            generation=generation,
        )

    def info(self, task: str) -> JudgeInfo | None:
        tally = self.tallies.get(task)
        if tally is None or tally.n_calls == 0:
            return None
        cost = self.price.cost(tally.input_tokens, tally.output_tokens) if self.price else None
        return JudgeInfo(
            role=self.role,
            model=self.runner.identity,
            template_sha256=dict(sorted(tally.templates.items())),
            rounds=self.rounds,
            temperature=self.temperature,
            n_calls=tally.n_calls,
            n_cached=tally.n_cached,
            n_errors=tally.n_errors,
            n_unparseable=tally.n_unparseable,
            input_tokens=tally.input_tokens,
            output_tokens=tally.output_tokens,
            cost_usd=round(cost, 6) if cost is not None else None,
        )
