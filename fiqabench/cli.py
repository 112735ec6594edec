"""The `fiqabench` command line."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import yaml
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from fiqabench import __version__
from fiqabench.benchmark.pipeline import DEFAULT_MAX_ERROR_RATE, Evaluation, error_rate
from fiqabench.benchmark.results import (
    ResultsFile,
    atomic_write_text,
    write_results,
    write_samples,
)
from fiqabench.benchmark.sharding import Shard
from fiqabench.benchmark.store import RecordStore
from fiqabench.cli_compare import compare_command
from fiqabench.cli_export import export_group
from fiqabench.cli_judge import (
    judge_agreement_command,
    judge_options,
    open_judging,
    pop_judge_options,
)
from fiqabench.cli_leaderboard import leaderboard_group
from fiqabench.cli_merge import merge_command
from fiqabench.cli_options import ExistingDir, PathOption, include_option
from fiqabench.cli_submit import submit_group
from fiqabench.errors import UserError
from fiqabench.summary import print_summary

if TYPE_CHECKING:
    from fiqabench.tasks.base import Task
    from fiqabench.tasks.registry import TaskRegistry

console = Console(stderr=True, soft_wrap=True)
out = Console()

STORE_FILE = "records.sqlite"


class RichProgress:
    def __init__(self, progress: Progress):
        self.progress = progress
        self.ids: dict[str, TaskID] = {}

    def start(self, task: str, total: int) -> None:
        self.ids[task] = self.progress.add_task(task, total=total)

    def advance(self, task: str, amount: int = 1) -> None:
        self.progress.advance(self.ids[task], amount)


@contextmanager
def rich_progress(enabled: bool) -> Iterator[RichProgress]:
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not enabled,
    )
    with progress:
        yield RichProgress(progress)


def _safe_dirname(alias: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", alias).strip("_") or "run"


def _registry(include_paths: tuple[Path, ...]) -> TaskRegistry:
    from fiqabench.tasks.registry import TaskRegistry

    return TaskRegistry(list(include_paths))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fiqabench")
def cli() -> None:
    """Evaluate how well vision-language models judge face and portrait image quality.

    \b
    Start here:
      fiqabench tasks list                       the tasks and whether their data is present
      fiqabench models list                      the model aliases
      fiqabench eval --model random --task all   run the chance baseline on every task
    """


@cli.command("eval")
@click.option(
    "--model",
    required=True,
    help="Model alias (see `fiqabench models list`), or hf:HUB_ID_OR_FOLDER, vllm:..., "
    "openai:MODEL, anthropic:MODEL, scores:FILE.csv.",
)
@click.option(
    "--task",
    "task_selection",
    default="all",
    show_default=True,
    help="A task name, a comma-separated list, or 'all' (every task whose data is present).",
)
@click.option(
    "--limit", type=click.IntRange(min=1), help="Evaluate only the first N samples of each task."
)
@click.option(
    "--shard",
    "shard_spec",
    metavar="I/N",
    help="Run only shard I of N (1-based): a fixed 1/N of each task's samples (after --limit), "
    "chosen by hashed sample id. Combine the N runs with `fiqabench merge`.",
)
@click.option(
    "--output-dir",
    type=PathOption,
    help="Where results.json, samples.jsonl and the record store go [default: runs/MODEL, "
    "with --shard runs/MODEL-shard-I-of-N].",
)
@include_option()
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed for chance baselines and bootstrap confidence intervals.",
)
@click.option(
    "--max-error-rate",
    type=click.FloatRange(0, 1),
    default=DEFAULT_MAX_ERROR_RATE,
    show_default=True,
    help="Exit with status 1 when the share of samples that failed (bad input or failed "
    "model calls) exceeds this.",
)
@click.option(
    "--cache-db",
    type=PathOption,
    help="Record store to read and write [default: OUTPUT_DIR/records.sqlite]. Share one "
    "across runs to reuse answers.",
)
@click.option(
    "--variants",
    help="Prompt variants for scalar tasks, comma-separated: simple, utility, reliability, "
    "classification, levels [default: each task's own].",
)
@click.option(
    "--scoring",
    type=click.Choice(["text", "logits"]),
    default="text",
    show_default=True,
    help="logits: score the `levels` prompt of scalar tasks by the expectation over the "
    "next-token probabilities of the level digits (local runners only), not by parsing text.",
)
@click.option(
    "--base-url",
    help="API models: the endpoint of an OpenAI-compatible (or Anthropic) server, e.g. a local "
    "vLLM server; with --model openai:MODEL.",
)
@click.option(
    "--api-key-env",
    help="API models: the environment variable that holds the API key [default: the "
    "runner's own, e.g. OPENAI_API_KEY].",
)
@click.option("--progress/--no-progress", default=True, help="Show the live progress bar.")
@judge_options
def eval_command(
    model: str,
    task_selection: str,
    limit: int | None,
    shard_spec: str | None,
    output_dir: Path | None,
    include_paths: tuple[Path, ...],
    seed: int,
    max_error_rate: float,
    cache_db: Path | None,
    variants: str | None,
    scoring: str,
    base_url: str | None,
    api_key_env: str | None,
    progress: bool,
    **judge_kwargs: Any,
) -> None:
    """Run a model on tasks, score the answers and write results.

    Answers are saved as they arrive; running the same command again resumes where it
    stopped, reusing every stored answer and retrying only failed or missing ones.
    """
    from fiqabench.runners.catalog import build_runner

    shard = Shard.parse(shard_spec) if shard_spec is not None else None
    registry = _registry(include_paths)
    tasks, skipped = registry.select(task_selection)
    for task in skipped:
        console.print(
            f"skipped {task.name}: its data is missing; prepare it with "
            f"`{escape(task.spec.prepare or 'see ' + str(task.loaded.path))}`",
            highlight=False,
        )
    if not tasks:
        raise UserError("no task to run: none of the selected tasks has its data")
    chosen = [name.strip() for name in (variants or "").split(",") if name.strip()]
    if scoring == "logits":
        if any(name != "levels" for name in chosen):
            raise UserError("--scoring logits scores the `levels` prompt only: drop --variants")
        chosen = ["levels"]
    if chosen:
        _use_variants(tasks, chosen, logits=scoring == "logits")
    runner = build_runner(
        model, seed=seed, overrides={"base_url": base_url, "api_key_env": api_key_env}
    )
    output_dir = output_dir or Path("runs") / _safe_dirname(
        model if shard is None else f"{model}-shard-{shard.index}-of-{shard.count}"
    )
    store = RecordStore(cache_db or output_dir / STORE_FILE)
    judges = pop_judge_options(judge_kwargs)
    try:
        with (
            rich_progress(progress) as sink,
            open_judging(judges, store, seed, sink) as judging,
        ):
            evaluation = Evaluation(
                runner=runner,
                store=store,
                output_dir=output_dir,
                seed=seed,
                limit=limit,
                shard=shard,
                include_paths=[str(p.resolve()) for p in include_paths],
                progress=sink,
                logits=scoring == "logits",
                judging=judging,
            )
            results = evaluation.run(tasks)
    finally:
        store.close()
        runner.close()
    print_summary(results, out, console)
    out.print(f"results: {output_dir / 'results.json'}", highlight=False)
    if shard is not None:
        out.print(
            f"partial results: shard {shard} holds 1/{shard.count} of each task's samples, and "
            f"its metrics cover that slice only; combine all {shard.count} shards with "
            "`fiqabench merge RUN_DIR... --output-dir DIR`",
            highlight=False,
            soft_wrap=True,
        )
    _check_error_rate(results, max_error_rate)


def _use_variants(tasks: list[Task], names: list[str], *, logits: bool) -> None:
    from fiqabench.tasks.scalar import ScalarTask

    scalar = [task for task in tasks if isinstance(task, ScalarTask)]
    option = "--scoring logits" if logits else "--variants"
    if not scalar or (logits and len(scalar) < len(tasks)):
        raise UserError(f"{option} applies to scalar tasks only; select them with --task")
    for task in scalar:
        task.use_variants(names)


def _check_error_rate(results: ResultsFile, max_error_rate: float) -> None:
    rate = error_rate(results)
    if rate > max_error_rate:
        console.print(
            f"[red]error: {100 * rate:.1f}% of samples failed, more than "
            f"--max-error-rate {100 * max_error_rate:.1f}%",
            highlight=False,
        )
        sys.exit(1)


@cli.command("score")
@click.option(
    "--run", "run_dir", type=ExistingDir, help="Re-score the saved responses of this run folder."
)
@click.option("--task", "task_name", help="Task of the predictions (with --predictions).")
@click.option(
    "--predictions",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help='JSONL of {"sample_id": ..., "response": ...} lines to score with no model.',
)
@click.option(
    "--output-dir", type=PathOption, help="Where to write results [default: the --run folder]."
)
@include_option()
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for bootstrap CIs.")
@click.option(
    "--cache-db",
    type=PathOption,
    help="Record store for judge replies [default: OUTPUT_DIR/records.sqlite].",
)
@judge_options
def score_command(
    run_dir: Path | None,
    task_name: str | None,
    predictions: Path | None,
    output_dir: Path | None,
    include_paths: tuple[Path, ...],
    seed: int,
    cache_db: Path | None,
    **judge_kwargs: Any,
) -> None:
    """Score answers without running a model: a saved run, or imported predictions.

    With --judge (and/or --extractor) the saved answers are judged again, reusing every judge
    reply already in the record store; without, earlier judge verdicts are kept.
    """
    from fiqabench.benchmark import rescore
    from fiqabench.benchmark.results import read_results

    if (run_dir is None) == (predictions is None):
        raise UserError("give either --run RUN_DIR or --task TASK --predictions FILE")
    if predictions is not None:
        if not task_name:
            raise UserError("--predictions needs --task")
        if output_dir is None:
            raise UserError("--predictions needs --output-dir")
    output_dir = output_dir or run_dir
    assert output_dir is not None
    judges = pop_judge_options(judge_kwargs)
    store = RecordStore(cache_db or output_dir / STORE_FILE) if judges.wanted else None
    try:
        with open_judging(judges, store, seed) as judging:
            if predictions is not None:
                task = _registry(include_paths).get(str(task_name))
                results, records = rescore.score_predictions(
                    task, predictions, seed=seed, judging=judging
                )
            else:
                assert run_dir is not None
                manifest_paths = [Path(p) for p in read_results(run_dir).manifest.include_paths]
                registry = _registry(tuple(dict.fromkeys([*manifest_paths, *include_paths])))
                results, records = rescore.rescore_run(run_dir, registry, judging=judging)
    finally:
        if store is not None:
            store.close()
    write_samples(output_dir, records)
    write_results(output_dir, results)
    print_summary(results, out, console)
    out.print(f"results: {output_dir / 'results.json'}", highlight=False)


cli.add_command(judge_agreement_command)


@cli.command("consistency")
@click.argument("run_a", type=ExistingDir)
@click.argument("run_b", type=ExistingDir)
@click.option("--output", type=PathOption, help="Also write the agreement table as JSON here.")
def consistency_command(run_a: Path, run_b: Path, output: Path | None) -> None:
    """Agreement of the scores of RUN_B with those of RUN_A, per scalar task and variant.

    Pearson r, MAE and bias (mean B - A) over the images both runs scored: compare two prompt
    variants, two models, or a model before and after an upgrade.
    """
    from fiqabench.benchmark.run_consistency import compare_runs

    rows = compare_runs(run_a, run_b)
    if not rows:
        raise UserError("the two runs share no scalar task with scored images")
    table = Table(title=f"consistency · {run_a} vs {run_b}")
    for column in ("task", "A", "B", "n", "pearson", "MAE", "bias"):
        table.add_column(column, justify="left" if column in "taskAB" else "right")
    for row in rows:
        table.add_row(
            row.task,
            row.variant_a,
            row.variant_b,
            str(row.agreement.n),
            *(_fmt3(v) for v in (row.agreement.pearson, row.agreement.mae, row.agreement.bias)),
        )
    out.print(table)
    if output is not None:
        atomic_write_text(output, json.dumps([row.model_dump() for row in rows], indent=2))


def _fmt3(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


@cli.group("data")
def data_group() -> None:
    """Prepare datasets into task folders (use them with --include-path)."""


@data_group.group("prepare")
def prepare_group() -> None:
    """Turn a dataset on disk into a scalar task folder: images.jsonl, comparisons, MOS, spec."""


name_option = click.option("--name", help="Task name written into the folder's spec.")
out_option = click.option("--out", type=PathOption, required=True, help="Output task folder.")


@prepare_group.command("lfw")
@click.option(
    "--src",
    type=ExistingDir,
    required=True,
    help="LFW root: person folders (or lfw/, lfw-deepfunneled/) and pairs.txt.",
)
@out_option
@click.option(
    "--pairs",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="pairs.txt [default: SRC/pairs.txt].",
)
@click.option("--limit-pairs", type=click.IntRange(min=2), help="Keep only the first N pairs.")
@click.option("--aligned", is_flag=True, help="Also save 112x112 aligned crops.")
@click.option("--no-similarity", is_flag=True, help="Skip SFace (no `face` extra needed).")
@name_option
def prepare_lfw_command(
    src: Path,
    out: Path,
    pairs: Path | None,
    limit_pairs: int | None,
    aligned: bool,
    no_similarity: bool,
    name: str | None,
) -> None:
    """LFW (pairs.txt protocol) with SFace similarities for error-versus-reject."""
    from fiqabench.tasks import prepare

    manifest = prepare.prepare_lfw(
        src,
        out,
        recognizers=() if no_similarity else None,
        limit_pairs=limit_pairs,
        aligned=aligned,
        pairs=pairs,
    )
    _finish_prepare(out, name or "lfw", manifest)


@prepare_group.command("scface")
@click.option(
    "--src",
    type=ExistingDir,
    required=True,
    help="Folder of SCface images named {id}_cam{1-5}_{1,2,3}.jpg.",
)
@out_option
@click.option(
    "--max-impostors",
    type=click.IntRange(min=1),
    help="Cap the non-mated comparisons (a seeded sample).",
)
@click.option("--seed", type=int, default=0, show_default=True)
@name_option
def prepare_scface_command(
    src: Path, out: Path, max_impostors: int | None, seed: int, name: str | None
) -> None:
    """SCface surveillance images: distance sensitivity, and comparisons across subjects."""
    from fiqabench.tasks import prepare

    manifest = prepare.prepare_scface(src, out, max_impostors=max_impostors, seed=seed)
    _finish_prepare(out, name or "scface", manifest)


@prepare_group.command("mos")
@click.option("--images", type=ExistingDir, required=True, help="Folder of the images.")
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    required=True,
    help="Opinion scores: CSV (or CGFIQA's label.json).",
)
@out_option
@click.option(
    "--layout",
    default="auto",
    show_default=True,
    help="auto, gfiqa, cgfiqa, vquala, or 'IMAGE_COLUMN,SCORE_COLUMN'.",
)
@name_option
def prepare_mos_command(
    images: Path, csv_path: Path, out: Path, layout: str, name: str | None
) -> None:
    """A MOS dataset (GFIQA-20k, CGFIQA-40k, VQualA layouts) for correlation metrics."""
    from fiqabench.tasks import prepare

    manifest = prepare.prepare_mos(images, csv_path, out, layout=layout)
    _finish_prepare(out, name or "mos", manifest)


@prepare_group.command("mixdeg")
@click.option(
    "--src",
    type=ExistingDir,
    required=True,
    help="Folder of clean face images (CelebA-HQ in the paper), searched recursively.",
)
@out_option
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--variants",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Mixed variants per reference image.",
)
@click.option(
    "--ladders/--no-ladders",
    default=True,
    show_default=True,
    help="Also write single-artifact severity ladders.",
)
@click.option(
    "--max-side",
    type=click.IntRange(min=32),
    default=512,
    show_default=True,
    help="Scale references to this longest side first (strengths assume ~512 px).",
)
@name_option
def prepare_mixdeg_command(
    src: Path, out: Path, seed: int, variants: int, ladders: bool, max_side: int, name: str | None
) -> None:
    """Mix-degradation detection benchmark: clean, mixed (three artifacts, one hard), ladders."""
    from fiqabench.tasks.mixdeg import MANIFEST_FILE, generate_mixdeg

    manifest = generate_mixdeg(
        src, out, seed=seed, variants=variants, ladders=ladders, max_side=max_side
    )
    task = name or "mixdeg"
    spec = {
        "name": task,
        "kind": "detection",
        "protocol": "mixdeg-detection-v1",
        "data": {"jsonl": MANIFEST_FILE},
    }
    atomic_write_text(out / f"{task}.yaml", yaml.safe_dump(spec, sort_keys=False))
    _prepared(out, task, manifest.counts)


def _prepared(folder: Path, task: str, counts: object) -> None:
    out.print(f"prepared {task} in {folder}: {counts}", highlight=False, soft_wrap=True)
    command = f"fiqabench eval --include-path {folder} --task {task} --model MODEL"
    out.print(f"run it with: {command}", highlight=False, soft_wrap=True)


def _finish_prepare(folder: Path, name: str, manifest: dict[str, object]) -> None:
    from fiqabench.tasks.prepare import COMPARISONS_FILE, IMAGES_FILE, MOS_FILE

    spec: dict[str, object] = {
        "name": name,
        "kind": "scalar",
        "protocol": "fiqa-zero-shot-v1",
        "data": {"jsonl": IMAGES_FILE},
        "scalar": {
            "variants": ["simple"],
            **({"comparisons": COMPARISONS_FILE} if (folder / COMPARISONS_FILE).exists() else {}),
            **({"mos": MOS_FILE} if (folder / MOS_FILE).exists() else {}),
        },
    }
    atomic_write_text(folder / f"{name}.yaml", yaml.safe_dump(spec, sort_keys=False))
    _prepared(folder, name, manifest.get("counts"))


@cli.group("tasks")
def tasks_group() -> None:
    """Inspect the available tasks."""


@tasks_group.command("list")
@include_option()
def tasks_list(include_paths: tuple[Path, ...]) -> None:
    """List tasks: kind, protocol, data status and how to prepare missing data."""
    registry = _registry(include_paths)
    table = Table(title="fiqabench tasks")
    for column in ("task", "kind", "protocol", "data", "origin", "description"):
        table.add_column(column)
    for name in registry.names:
        task = registry.get(name)
        missing = f"[red]missing[/] · {escape(task.spec.prepare or '')}"
        data = "[green]ready" if task.data_available() else missing
        origin = "built-in" if task.loaded.builtin else str(task.loaded.path)
        table.add_row(name, task.spec.kind, task.spec.protocol, data, origin, task.spec.description)
    out.print(table)


@cli.group("models")
def models_group() -> None:
    """Inspect the model catalog."""


@models_group.command("list")
def models_list() -> None:
    """List model aliases: runner, model id, revision and the install extra each needs."""
    from fiqabench.runners.catalog import load_catalog

    table = Table(title="fiqabench models")
    for column in ("alias", "runner", "model id", "revision", "extra", "description"):
        table.add_column(column)
    for alias, entry in load_catalog().items():
        table.add_row(
            alias,
            entry.runner,
            entry.model_id,
            entry.revision or "—",
            entry.extra or "(core)",
            entry.description,
        )
    out.print(table)


cli.add_command(compare_command)
cli.add_command(merge_command)
cli.add_command(submit_group)
cli.add_command(leaderboard_group)
cli.add_command(export_group)


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        console.print("aborted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except UserError as exc:
        console.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
        sys.exit(2)


if __name__ == "__main__":
    main()
