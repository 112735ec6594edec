"""Command-line options for LLM judges, and `fiqabench judge-agreement`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from fiqabench.benchmark.calls import NoProgress, ProgressSink
from fiqabench.benchmark.store import RecordStore
from fiqabench.judges.agreement import CALIBRATION_LABELS, judge_agreement, read_labels
from fiqabench.judges.judging import Judging
from fiqabench.judges.llm import LLMJudge, Price

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_ROUNDS = 5  # the reference protocol asks the judge five times


@dataclass(frozen=True)
class JudgeOptions:
    judge: str | None
    extractor: str | None
    rounds: int
    temperature: float
    max_tokens: int
    price: str | None
    base_url: str | None
    api_key_env: str | None

    @property
    def wanted(self) -> bool:
        return self.judge is not None or self.extractor is not None


def judge_options(command: F) -> F:
    """The options of every command that may call a judge; they arrive as `judge_options`."""
    options = [
        click.option(
            "--judge",
            help="Model alias that scores open-ended answers and descriptions (any runner: "
            "openai:MODEL, anthropic:MODEL, a local alias...). Without one they stay unscored.",
        ),
        click.option(
            "--judge-rounds",
            type=click.IntRange(min=1),
            default=DEFAULT_ROUNDS,
            show_default=True,
            help="Times the judge is asked per item; item score = mean of valid scores / 2.",
        ),
        click.option(
            "--judge-temperature",
            type=click.FloatRange(min=0),
            default=1.0,
            show_default=True,
            help="Judge sampling temperature (rounds differ only above 0; the reference "
            "protocol samples at the API default, 1).",
        ),
        click.option(
            "--judge-max-tokens",
            type=click.IntRange(min=1),
            default=256,
            show_default=True,
            help="Cap on each judge or extractor reply.",
        ),
        click.option(
            "--extractor",
            help="Model alias that reads closed answers the rules could not parse (it may "
            "answer 'none'); asked once, at temperature 0.",
        ),
        click.option(
            "--judge-price",
            metavar="IN,OUT",
            help="US dollars per million input and output tokens of the judge and extractor, "
            "to report their cost.",
        ),
        click.option(
            "--judge-base-url", help="Endpoint of the judge and extractor, for API models."
        ),
        click.option(
            "--judge-api-key-env",
            help="Environment variable holding the judge's and extractor's API key.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def pop_judge_options(kwargs: dict[str, Any]) -> JudgeOptions:
    return JudgeOptions(
        judge=kwargs.pop("judge"),
        extractor=kwargs.pop("extractor"),
        rounds=kwargs.pop("judge_rounds"),
        temperature=kwargs.pop("judge_temperature"),
        max_tokens=kwargs.pop("judge_max_tokens"),
        price=kwargs.pop("judge_price"),
        base_url=kwargs.pop("judge_base_url"),
        api_key_env=kwargs.pop("judge_api_key_env"),
    )


@contextmanager
def open_judging(
    options: JudgeOptions,
    store: RecordStore | None,
    seed: int,
    progress: ProgressSink | None = None,
) -> Iterator[Judging | None]:
    """The run's judge and extractor (None without either); their runners closed afterwards."""
    if not options.wanted:
        yield None
        return
    assert store is not None, "judges need a record store"
    from fiqabench.runners.catalog import build_runner

    price = Price.parse(options.price) if options.price else None
    overrides = {"base_url": options.base_url, "api_key_env": options.api_key_env}
    sink = progress or NoProgress()
    judging = Judging()
    try:
        if options.judge is not None:
            judging.judge = LLMJudge(
                build_runner(options.judge, seed=seed, overrides=overrides),
                store,
                rounds=options.rounds,
                temperature=options.temperature,
                max_new_tokens=options.max_tokens,
                price=price,
                progress=sink,
            )
        if options.extractor is not None:
            judging.extractor = LLMJudge(
                build_runner(options.extractor, seed=seed, overrides=overrides),
                store,
                role="extractor",
                rounds=1,
                temperature=0.0,
                max_new_tokens=options.max_tokens,
                price=price,
                progress=sink,
            )
        yield judging
    finally:
        for judge in (judging.judge, judging.extractor):
            if judge is not None:
                judge.runner.close()


@click.command("judge-agreement")
@click.option(
    "--labels",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=CALIBRATION_LABELS,
    show_default="the mini benchmark's calibration set",
    help="JSONL of human-labelled answers: id, question, reference, response, label (0-2).",
)
@click.option("--output", type=click.Path(path_type=Path), help="Also write the report as JSON.")
@click.option("--cache-db", type=click.Path(path_type=Path), help="Record store for judge replies.")
@click.option("--seed", type=int, default=0, show_default=True)
@judge_options
def judge_agreement_command(
    labels: Path, output: Path | None, cache_db: Path | None, seed: int, **kwargs: Any
) -> None:
    """How often a judge agrees with human labels: accuracy, Cohen's kappa, Krippendorff's alpha.

    Each labelled answer is judged with the open-ended rubric (--judge-rounds times); the
    judge's label is its mean valid score rounded to the nearest integer (halves up).
    """
    from fiqabench.cli import console, out, rich_progress
    from fiqabench.errors import UserError
    from fiqabench.judges.agreement import print_agreement, write_agreement

    options = pop_judge_options(kwargs)
    if options.judge is None:
        raise UserError("judge-agreement needs --judge MODEL")
    if options.extractor is not None:
        raise UserError("judge-agreement measures a judge: drop --extractor")
    items = read_labels(labels)
    store = RecordStore(cache_db or Path("runs") / "judge-agreement" / "records.sqlite")
    try:
        with rich_progress(True) as sink, open_judging(options, store, seed, sink) as judging:
            assert judging is not None and judging.judge is not None
            report = judge_agreement(judging.judge, items, labels)
    finally:
        store.close()
    print_agreement(report, out)
    if output is not None:
        write_agreement(report, output)
        console.print(f"report: {output}", highlight=False)
