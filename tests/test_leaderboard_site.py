"""The static leaderboard site without a browser: SVG geometry, tables, escaping, files, JSON."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest
from markupsafe import escape

from fiqabench.benchmark.results import read_results, read_samples, write_results, write_samples
from fiqabench.benchmark.schema import Record
from fiqabench.leaderboard import plots
from fiqabench.leaderboard.bundle_thumbs import LocalTasks, LocalThumbnails
from fiqabench.leaderboard.render import TEMPLATES, environment
from fiqabench.leaderboard.site import LEADERBOARD_FILE, build_site
from fiqabench.leaderboard.site_inputs import load_run_folder
from fiqabench.leaderboard.site_metrics import format_value, metric_info, protocol_labels
from fiqabench.leaderboard.site_samples import PAGE_SIZE, Verdict, pages, verdict
from fiqabench.leaderboard.site_tables import Row
from fiqabench.leaderboard.submission import Submission
from fiqabench.leaderboard.svg import (
    Axes,
    Frame,
    Radar,
    RadarSeries,
    Series,
    line_chart,
    nice_range,
    path_data,
    radar_chart,
    tick_label,
)
from fiqabench.tasks.registry import TaskRegistry
from tests.test_cli import run_cli

HOSTILE = "<img src=x onerror=alert(1)>"
ESCAPED = "&lt;img src=x onerror=alert(1)&gt;"
MODELS = ("random", "classical-laplacian")
NS = "{http://www.w3.org/2000/svg}"


# ------------------------------------------------------------------------------------------
# Real runs: small evaluations of real models on every builtin task, shared by the tests.


def mini_tasks() -> str:
    """Every builtin mini task: their data ships in the package, no download needed."""
    return ",".join(name for name in TaskRegistry().names if name.startswith("mini-"))


def run_eval(model: str, out: Path, limit: int = 40) -> Path:
    command = [sys.executable, "-m", "fiqabench", "eval", "--model", model, "--task", mini_tasks()]
    command += ["--limit", str(limit), "--output-dir", str(out), "--no-progress"]
    subprocess.run(command, check=True, capture_output=True, text=True)
    return out


@pytest.fixture(scope="session")
def real_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    return {model: run_eval(model, root / model) for model in MODELS}


@pytest.fixture(scope="session")
def local_tasks() -> LocalTasks:
    return LocalTasks(TaskRegistry())


@pytest.fixture(scope="session")
def submissions(real_runs: dict[str, Path], local_tasks: LocalTasks) -> list[Submission]:
    thumbs = LocalThumbnails(local_tasks)
    return [load_run_folder(path, thumbs) for path in real_runs.values()]


@pytest.fixture(scope="session")
def site(
    submissions: list[Submission], local_tasks: LocalTasks, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    out = tmp_path_factory.mktemp("site") / "site"
    build_site(submissions, out, tasks=local_tasks)
    return out


def make_hostile_run(source: Path, folder: Path) -> Path:
    """A copy of a run whose model name, identity, response, error and meta are markup."""
    results = read_results(source)
    records = read_samples(source)
    model = results.manifest.model.model_copy(update={"alias": HOSTILE, "model_id": HOSTILE})
    results.manifest.model = model
    results.manifest.command = ["fiqabench", HOSTILE]
    qa = results.results["mini-qa"]
    results.results["mini-qa"] = qa.model_copy(update={"protocol": f"qbench{HOSTILE}"})
    first_qa = next(i for i, r in enumerate(records) if r.task == "mini-qa")
    records[first_qa] = records[first_qa].model_copy(
        update={"response": f"</pre>{HOSTILE}<script>alert(2)</script>", "error": HOSTILE}
    )
    records[0] = records[0].model_copy(update={"meta": {HOSTILE: HOSTILE}})
    out = folder / HOSTILE
    out.mkdir(parents=True)
    write_results(out, results)
    write_samples(out, records)
    return out


# ------------------------------------------------------------------------------------------
# HTML helpers


class _Tables(HTMLParser):
    """Collects header attributes and cell (text, attributes) of every table with an id."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, dict[str, list[object]]] = {}
        self._table: str | None = None
        self._cell: dict[str, str | None] | None = None
        self._text: list[str] = []
        self._row: list[tuple[str, dict[str, str | None]]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "table" and attributes.get("id"):
            self._table = attributes["id"]
            self.tables[self._table] = {"headers": [], "rows": []}
        elif self._table and tag == "tr":
            self._row = []
        elif self._table and tag in ("th", "td"):
            self._cell, self._text = attributes, []

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if self._table is None:
            return
        if tag in ("th", "td") and self._cell is not None and self._row is not None:
            self._row.append((" ".join("".join(self._text).split()), self._cell))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            kind = "headers" if self._row and "scope" in self._row[0][1] else "rows"
            if kind == "headers":
                self.tables[self._table]["headers"] = self._row  # type: ignore[assignment]
            else:
                self.tables[self._table]["rows"].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None


def tables(path: Path) -> dict[str, dict[str, list[object]]]:
    parser = _Tables()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser.tables


# ------------------------------------------------------------------------------------------
# SVG geometry


def test_line_chart_puts_a_known_curve_at_hand_computed_pixels() -> None:
    # Plot area: x 40..190 (150 px), y 10..70 (60 px). Axes round to [0, 1] x [0, 0.5].
    frame = Frame(width=200, height=100, left=40, right=10, top=10, bottom=30)
    svg = line_chart(
        [Series("a", [(0.0, 0.0), (0.5, 0.25), (1.0, 0.5)], "c0 d0")],
        title="t",
        x_label="x",
        y_label="y",
        frame=frame,
    )
    root = ET.fromstring(str(svg))
    paths = [p for p in root.iter(f"{NS}path") if "line" in p.get("class", "")]
    assert [p.get("d") for p in paths] == ["M40.0 70.0 L115.0 40.0 L190.0 10.0"]
    assert root.get("viewBox") == "0 0 200.0 100.0"


def test_missing_points_break_the_line_and_repeated_pixels_are_dropped() -> None:
    axes = Axes(Frame(width=200, height=100, left=40, right=10, top=10, bottom=30), (0, 1), (0, 1))
    points: list[tuple[float, float | None]] = [(0, 0), (0.5, None), (1, 1), (1.0000001, 1)]
    assert path_data(axes, points) == "M40.0 70.0 M190.0 10.0"
    assert path_data(axes, [(0, None)]) == ""


def test_axes_round_to_nice_steps() -> None:
    assert nice_range(0.0, 0.137) == pytest.approx((0.0, 0.15, 0.05))
    assert nice_range(0.0, 1.0) == pytest.approx((0.0, 1.0, 0.2))
    assert nice_range(-0.3, 0.7) == pytest.approx((-0.4, 0.8, 0.2))
    assert nice_range(2.0, 2.0) == pytest.approx((1.4, 2.6, 0.2))  # degenerate: widened
    assert [tick_label(v, 0.25) for v in (0.0, 0.25, 1.0)] == ["0.00", "0.25", "1.00"]
    assert tick_label(-0.0, 0.1) == "0.0" and tick_label(10, 5) == "10"


def test_radar_vertices_lie_at_the_value_share_of_each_spoke() -> None:
    radar = Radar(n_axes=4, cx=100, cy=100, radius=50)  # spokes: up, right, down, left
    assert radar.vertex(0, 1.0) == pytest.approx((100, 50))
    assert radar.vertex(1, 0.5) == pytest.approx((125, 100))
    assert radar.vertex(2, 0.0) == pytest.approx((100, 100))
    assert radar.vertex(3, 0.25) == pytest.approx((87.5, 100))
    assert radar.vertex(0, 2.0) == pytest.approx((100, 50))  # clamped to the outer ring

    svg = radar_chart(
        ["a", "b", "c", "d"], [RadarSeries("m", [1.0, 0.5, 0.0, 0.25], "c0 d0")], title="r"
    )
    root = ET.fromstring(str(svg))
    outer = [p for p in root.iter(f"{NS}polygon") if p.get("class") == "ring"][-1]
    area = next(p for p in root.iter(f"{NS}polygon") if p.get("class") == "area")
    ring = [tuple(map(float, pt.split(","))) for pt in outer.get("points", "").split()]
    shape = [tuple(map(float, pt.split(","))) for pt in area.get("points", "").split()]
    cx, cy = ring[0][0], ring[1][1]  # the top vertex is above the centre, the right one level
    radius = cy - ring[0][1]
    distances = [math.dist((cx, cy), point) / radius for point in shape]
    assert distances == pytest.approx([1.0, 0.5, 0.0, 0.25], abs=0.002)
    assert [a.text for a in root.iter(f"{NS}text") if a.get("class") == "axis-label"] == list(
        "abcd"
    )


def test_radar_with_a_missing_value_draws_dots_not_a_polygon() -> None:
    svg = radar_chart(["a", "b", "c"], [RadarSeries("m", [0.5, None, 1.0], "c1 d0")], title="r")
    root = ET.fromstring(str(svg))
    assert not [p for p in root.iter(f"{NS}polygon") if p.get("class") == "area"]
    assert len(list(root.iter(f"{NS}circle"))) == 2
    with pytest.raises(ValueError, match="at least 3 axes"):
        radar_chart(["a", "b"], [], title="r")


def test_chart_labels_are_escaped_by_the_serialiser() -> None:
    svg = str(
        line_chart(
            [Series(HOSTILE, [(0, 0), (1, 1)], "c0 d0")], title=HOSTILE, x_label="x", y_label="y"
        )
    )
    assert HOSTILE not in svg and ESCAPED in svg
    assert ET.fromstring(svg).find(f"{NS}title").text == HOSTILE  # type: ignore[union-attr]


# ------------------------------------------------------------------------------------------
# Metrics, verdicts, pages


def test_metric_formatting_and_directions() -> None:
    assert format_value(0.3, percent=True) == "30.0"
    assert format_value(0.0236024, percent=False) == "0.0236"
    assert format_value(0.4678, percent=False) == "0.468"
    assert format_value(70.767, percent=False) == "70.77"
    assert format_value(240, percent=False) == "240"
    assert format_value(None, percent=True) == "—"
    assert format_value(float("nan"), percent=False) == "nan"
    assert metric_info("accuracy").better == "higher" and metric_info("accuracy").percent
    assert metric_info("iso_edc_pauc_20").better == "lower"
    assert metric_info("hallucination_rate").better == "lower"
    assert metric_info("error_rate").better == "lower"
    assert metric_info("describe_precision").percent is False  # judge points, not a share
    assert metric_info("n_mated").better is None


def record(**fields: object) -> Record:
    return Record.model_validate({"sample_id": "s", "task": "t", **fields})


def test_verdicts_name_the_status_then_correctness_and_score() -> None:
    assert verdict(record(status="error", error="boom")).kind == "error"
    assert verdict(record(status="parse_fail")).kind == "unparsed"
    assert verdict(record(status="unscored")).text == "unscored (needs a judge)"
    assert verdict(record(status="ok", correct=True)).text == "correct"
    assert verdict(record(status="ok", correct=False, score=12.1)).text == "wrong · score 12.1"
    judged = verdict(record(status="ok", correct=True, score=0.75, parse_stage="llm-judge"))
    assert judged.kind == "correct" and judged.text == "correct · judge score 0.75"
    assert verdict(record(status="ok", score=96.4)).kind == "scored"


def test_verdicts_say_when_a_judge_or_the_extractor_decided() -> None:
    # The judge replied but gave no valid score: judged, not waiting for a judge.
    unparseable = verdict(record(status="unscored", parse_stage="llm-judge-unparseable"))
    assert unparseable == Verdict("unscored", "judge gave no valid score")
    extracted = verdict(record(status="ok", correct=False, parse_stage="llm-extractor"))
    assert extracted == Verdict("wrong", "wrong (read by LLM extractor)")
    none = verdict(record(status="parse_fail", correct=False, parse_stage="llm-extractor-none"))
    assert none == Verdict("unparsed", "unparsed (LLM extractor found no answer)")
    assert verdict(record(status="parse_fail", parse_stage="strict")).text == "unparsed"


def test_browser_pages_split_records_into_bounded_pages() -> None:
    assert [len(r) for r in pages(2 * PAGE_SIZE + 50)] == [PAGE_SIZE, PAGE_SIZE, 50]
    assert pages(0) == [range(0)]


# ------------------------------------------------------------------------------------------
# The built site


def test_site_layout_and_thumbnails_written_once_per_content(
    site: Path, submissions: list[Submission]
) -> None:
    assert (site / "index.html").is_file() and (site / LEADERBOARD_FILE).is_file()
    assert (site / "static" / "site.css").is_file() and (site / "static" / "site.js").is_file()
    tasks = {result.task for s in submissions for result in s.results.results.values()}
    assert {p.stem for p in (site / "tasks").glob("*.html")} == tasks
    for model in MODELS:
        assert (site / "models" / f"{model}.html").is_file()
        record_tasks = {r.task for s in submissions if s.name == model for r in s.records}
        assert {p.stem.rsplit("-", 1)[0] for p in (site / "models" / model).glob("*.html")} == (
            record_tasks
        )
    distinct = {data for s in submissions for data in s.thumbnails.values()}
    written = list((site / "thumbs").iterdir())
    assert distinct and len(written) == len(distinct)
    for path in written:
        assert path.name == f"{hashlib.sha256(path.read_bytes()).hexdigest()}.jpg"
    # Every link and image in every page is relative and points at a file of the site.
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        for target in re.findall(r'(?:href|src)="([^"#]+)', text):
            assert not re.match(r"[a-z]+:|/", target), (page, target)
            assert (page.parent / target).resolve().is_file(), (page, target)


def test_leaderboard_json_ranks_models_and_keeps_their_numbers(
    site: Path, real_runs: dict[str, Path]
) -> None:
    document = json.loads((site / LEADERBOARD_FILE).read_text())
    assert document["schema_version"] == "fiqabench.leaderboard/1"
    assert document["ranking"] == {"entry": "mini-qa", "metric": "accuracy"}
    accuracies = [m["results"]["mini-qa"]["metrics"]["accuracy"] for m in document["models"]]
    assert accuracies == sorted(accuracies, reverse=True)
    assert [m["rank"] for m in document["models"]] == [1, 2]
    for model in document["models"]:
        results = read_results(real_runs[model["name"]])
        assert model["model"]["alias"] == results.manifest.model.alias
        assert set(model["results"]) == set(results.results)
        for name, entry in results.results.items():
            expected = {
                k: (None if v is not None and math.isnan(v) else v)
                for k, v in entry.metrics.items()
            }
            assert model["results"][name]["metrics"] == expected
            assert model["results"][name]["protocol"] == entry.protocol
            assert (site / model["page"]).is_file()
    qa = next(e for e in document["entries"] if e["name"] == "mini-qa")
    assert qa["kind"] == "qa" and qa["headline"] == ["accuracy"]
    assert [p["label"] for p in qa["protocols"]] == ["P1"]
    assert sorted(qa["protocols"][0]["models"]) == sorted(MODELS)


def test_overall_table_cells_carry_the_numbers_the_script_sorts_by(
    site: Path, real_runs: dict[str, Path]
) -> None:
    overall = tables(site / "index.html")["overall"]
    headers = overall["headers"]
    labels = [text for text, _ in headers]  # type: ignore[misc]
    column = labels.index("mini-qa accuracy (%) ↑")
    _, attributes = headers[column]  # type: ignore[misc]
    assert attributes["data-type"] == "number" and attributes["data-first"] == "descending"
    edc = labels.index("mini-fiqa:simple EDC pAUC@20% ↓")
    assert headers[edc][1]["data-first"] == "ascending"  # type: ignore[index]
    assert headers[0][1]["data-type"] == "text"  # type: ignore[index]
    for row in overall["rows"]:
        name = row[0][0]  # type: ignore[index]
        metrics = read_results(real_runs[name]).results["mini-qa"].metrics
        text, cell = row[column]  # type: ignore[index]
        assert cell["data-sort-value"] == repr(metrics["accuracy"])
        assert text.startswith(f"{100 * metrics['accuracy']:.1f}")  # with its CI after it
        limit = read_results(real_runs[name]).manifest.limit
        assert row[labels.index("samples")][0] == f"first {limit}"  # type: ignore[index]


def test_task_page_tabulates_breakdowns_and_plots_curves(site: Path) -> None:
    page = site / "tasks" / "mini-qa.html"
    found = tables(page)
    assert {"mini-qa-main", *(f"mini-qa-breakdown-{i}" for i in range(1, 6))} <= set(found)
    text = page.read_text(encoding="utf-8")
    for key in ("type", "scope", "dimension", "subdimension", "source"):
        assert f"accuracy (%) by {key}" in text
    assert "protocol qbench-portrait-v1 · judge rules-v1" in text
    fiqa = (site / "tasks" / "mini-fiqa.html").read_text(encoding="utf-8")
    assert "mini-fiqa:simple · iso_edc/fnm_edc" in fiqa and 'class="line c' in fiqa


def test_samples_pages_show_questions_from_the_task_data(
    site: Path, submissions: list[Submission], local_tasks: LocalTasks
) -> None:
    items = local_tasks.samples("mini-qa")
    assert items is not None
    first = next(r for r in submissions[0].records if r.task == "mini-qa")
    page = (site / "models" / submissions[0].name / "mini-qa-1.html").read_text(encoding="utf-8")
    question = items[first.sample_id].item.question
    assert str(escape(question)) in page
    assert 'data-verdict="correct"' in page or 'data-verdict="wrong"' in page


def test_a_different_task_spec_hides_questions_rather_than_showing_wrong_ones(
    submissions: list[Submission], local_tasks: LocalTasks, tmp_path: Path
) -> None:
    original = submissions[0]
    manifest = original.results.manifest.model_copy(deep=True)
    for task in manifest.tasks:
        task.spec_sha256 = "0" * 64
    changed = dataclasses.replace(
        original, results=original.results.model_copy(update={"manifest": manifest})
    )
    build_site([changed], tmp_path / "site", tasks=local_tasks)
    page = (tmp_path / "site" / "models" / original.name / "mini-qa-1.html").read_text()
    assert "questions of this task are not available here" in page
    first = next(r for r in original.records if r.task == "mini-qa")
    items = local_tasks.samples("mini-qa")
    assert items is not None and items[first.sample_id].item.question not in page


def test_submission_text_is_escaped_everywhere(
    real_runs: dict[str, Path], local_tasks: LocalTasks, tmp_path: Path
) -> None:
    hostile = make_hostile_run(real_runs["random"], tmp_path / "subs")
    submission = load_run_folder(hostile, LocalThumbnails(local_tasks))
    report = build_site([submission], tmp_path / "site", tasks=local_tasks)
    assert report.pages > 3
    for page in (tmp_path / "site").rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert "<img src=x" not in text and "<script>alert" not in text, page
        assert re.fullmatch(r"[a-z0-9._/-]+", page.relative_to(tmp_path / "site").as_posix())
    assert ESCAPED in (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    samples = next((tmp_path / "site" / "models").glob("*/mini-qa-1.html")).read_text()
    assert f"&lt;/pre&gt;{ESCAPED}&lt;script&gt;" in samples


def test_templates_never_mark_values_safe() -> None:
    assert environment().autoescape is True
    for template in TEMPLATES.glob("*.j2"):
        text = template.read_text(encoding="utf-8")
        assert not re.search(r"\|\s*safe|autoescape\s+false|Markup", text), template
    folder = TEMPLATES.parent
    ours = [*folder.glob("site*.py"), *(folder / n for n in ("plots.py", "render.py", "svg.py"))]
    with_markup = sorted({p.name for p in ours if "Markup(" in p.read_text()})
    assert with_markup == ["svg.py"]  # only charts built by ElementTree are trusted markup


def test_different_protocols_are_labelled_and_marked(
    submissions: list[Submission], local_tasks: LocalTasks, tmp_path: Path
) -> None:
    odd = submissions[1]
    entry = odd.results.results["mini-qa"]
    changed = entry.model_copy(update={"prompt_template_sha256": {"user": "f" * 64}})
    results = odd.results.model_copy(
        update={"results": {**odd.results.results, "mini-qa": changed}}
    )
    shifted = dataclasses.replace(odd, results=results)
    labels = protocol_labels([submissions[0].results.results["mini-qa"], changed])
    assert sorted(labels.values()) == ["P1", "P2"]
    build_site([submissions[0], shifted], tmp_path / "site", tasks=local_tasks)
    task_page = (tmp_path / "site" / "tasks" / "mini-qa.html").read_text(encoding="utf-8")
    assert "user ffffffffffff" in task_page and "<strong>P2</strong>" in task_page
    overall = tables(tmp_path / "site" / "index.html")["overall"]
    marks = {row[0][0]: row[4][0] for row in overall["rows"]}  # type: ignore[index]
    marked = [name for name, text in marks.items() if text.endswith("P2")]
    assert len(marked) == 1


def test_build_refuses_duplicates_and_foreign_folders_and_replaces_its_own_site(
    submissions: list[Submission], tmp_path: Path
) -> None:
    from fiqabench.errors import UserError

    with pytest.raises(UserError, match="share the name"):
        build_site([submissions[0], submissions[0]], tmp_path / "a")
    with pytest.raises(UserError, match="no submissions"):
        build_site([], tmp_path / "a")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not a fiqabench site"):
        build_site(submissions, foreign)
    assert (foreign / "notes.txt").read_text() == "mine"

    out = tmp_path / "site"
    build_site(submissions, out)
    build_site(submissions[:1], out)  # a rebuild leaves no pages of the dropped model
    assert not (out / "models" / f"{submissions[1].name}.html").exists()
    assert (out / "models" / f"{submissions[0].name}.html").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_cli_builds_from_run_folders_and_reports_bad_input(
    real_runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "subs"
    folder.mkdir()
    for name, path in real_runs.items():
        (folder / name).symlink_to(path, target_is_directory=True)
    code, out, err = run_cli(
        "leaderboard", "build", "--submissions", folder, "--out", tmp_path / "site", capsys=capsys
    )
    assert code == 0, err
    assert "2 models" in out and (tmp_path / "site" / "index.html").is_file()
    assert list((tmp_path / "site" / "thumbs").glob("*.jpg"))  # made from the task images

    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run_cli(
        "leaderboard", "build", "--submissions", empty, "--out", tmp_path / "x", capsys=capsys
    )
    assert code == 2 and str(empty) in err and "no submissions here" in err

    broken = tmp_path / "broken" / "run"
    broken.mkdir(parents=True)
    (broken / "results.json").write_text("{}")
    code, _, err = run_cli(
        "leaderboard",
        "build",
        "--submissions",
        broken.parent,
        "--out",
        tmp_path / "y",
        capsys=capsys,
    )
    assert code == 2 and "samples.jsonl" in err and str(broken) in err


def test_cli_builds_from_bundles_beside_run_folders(
    real_runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fiqabench.leaderboard.bundle import pack_bundle

    folder = tmp_path / "subs"
    folder.mkdir()
    pack_bundle(real_runs["random"], folder / "random-bundle.zip")
    (folder / "laplacian").symlink_to(real_runs["classical-laplacian"], target_is_directory=True)
    code, _, err = run_cli(
        "leaderboard", "build", "--submissions", folder, "--out", tmp_path / "site", capsys=capsys
    )
    assert code == 0, err
    document = json.loads((tmp_path / "site" / LEADERBOARD_FILE).read_text())
    assert sorted(m["name"] for m in document["models"]) == ["laplacian", "random-bundle"]
    bundle_page = tmp_path / "site" / "models" / "random-bundle" / "mini-qa-1.html"
    assert "<img src=" in bundle_page.read_text()  # the bundle's own thumbnails

    (folder / "Random-Bundle").symlink_to(real_runs["random"], target_is_directory=True)
    code, _, err = run_cli(
        "leaderboard", "build", "--submissions", folder, "--out", tmp_path / "x", capsys=capsys
    )
    assert code == 2 and "'random-bundle' and 'Random-Bundle'" in err


def test_charts_with_nothing_measured_are_left_out(submissions: list[Submission]) -> None:
    qa = submissions[0].results.results["mini-qa"]
    unjudged = {
        key: {value: {**cells, "accuracy": None} for value, cells in groups.items()}
        for key, groups in qa.breakdowns.items()
    }
    rows = [Row("m", "models/m.html", qa.model_copy(update={"breakdowns": unjudged}), "P1")]
    assert plots.entry_radar("mini-qa", rows) is None
    assert plots.model_radar("mini-qa", rows[0], rows) is None
    measured = [Row("m", "models/m.html", qa, "P1")]
    chart = plots.entry_radar("mini-qa", measured)
    assert chart is not None and [item.label for item in chart.legend] == ["m"]

    fiqa = submissions[0].results.results["mini-fiqa:simple"]
    curves = {"empty": [(0.0, None), (1.0, None)], **fiqa.curves}
    entry = fiqa.model_copy(update={"curves": curves})
    charts = plots.entry_curve_charts([Row("m", "models/m.html", entry, "P1")], "x")
    assert [c.title for c in charts] == [f"x · {name}" for name in fiqa.curves]
    own = plots.model_curve_chart("x", entry)
    assert own is not None and [item.label for item in own.legend] == list(fiqa.curves)
