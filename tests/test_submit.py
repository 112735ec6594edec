"""Submission bundles: pack a real run, validate it, and refuse every kind of bad bundle."""

from __future__ import annotations

import hashlib
import io
import json
import math
import shutil
import stat
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import fiqabench
from fiqabench.benchmark.results import read_results, read_samples
from fiqabench.cli import cli
from fiqabench.errors import UserError
from fiqabench.leaderboard.bundle import (
    BundleLimits,
    default_bundle_path,
    load_submission,
    load_submissions,
    pack_bundle,
    read_bundle,
    validate_bundle,
)
from fiqabench.leaderboard.bundle_thumbs import (
    THUMB_MAX_SIDE,
    LocalTasks,
    LocalThumbnails,
    clean_thumbnail,
    collect_thumbnails,
)
from fiqabench.leaderboard.validate_diff import same
from fiqabench.leaderboard.validate_text import free_text_problem, identifier_problem, printable
from fiqabench.tasks.registry import TaskRegistry
from tests.test_cli import run_cli

Members = dict[str, bytes]
TASKS = "mini-qa,mini-fiqa,mini-degradation"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "random"
    args = ["eval", "--model", "random", "--task", TASKS, "--limit", "12"]
    cli.main([*args, "--output-dir", str(out), "--no-progress"], standalone_mode=False)
    return out


@pytest.fixture(scope="module")
def bundle(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pack_bundle(run_dir, tmp_path_factory.mktemp("bundle") / "random.zip")


def read_members(path: Path) -> Members:
    with zipfile.ZipFile(path) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def write_bundle(path: Path, members: Members, *, fix_manifest: bool = True) -> Path:
    """Write members as a zip; with fix_manifest, bundle.json lists their true sizes and hashes,
    so that only the later checks (schemas, text, re-scoring) can catch a change."""
    members = dict(members)
    if fix_manifest:
        manifest = json.loads(members["bundle.json"])
        manifest["members"] = [
            {"path": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            for name, data in members.items()
            if name != "bundle.json"
        ]
        members["bundle.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def edited(bundle: Path, tmp_path: Path, change: Callable[[Members], None]) -> Path:
    members = read_members(bundle)
    change(members)
    return write_bundle(tmp_path / "edited.zip", members)


def edit_results(change: Callable[[dict[str, Any]], None]) -> Callable[[Members], None]:
    def apply(members: Members) -> None:
        document = json.loads(members["results.json"])
        change(document)
        members["results.json"] = json.dumps(document).encode()

    return apply


def edit_records(change: Callable[[list[dict[str, Any]]], None]) -> Callable[[Members], None]:
    def apply(members: Members) -> None:
        records = [json.loads(line) for line in members["samples.jsonl"].splitlines()]
        change(records)
        members["samples.jsonl"] = "".join(json.dumps(r) + "\n" for r in records).encode()

    return apply


def refused(path: Path, capsys: pytest.CaptureFixture[str], *expected: str) -> str:
    code, stdout, stderr = run_cli("submit", "validate", path, capsys=capsys)
    assert code == 2, stdout + stderr
    for text in expected:
        assert text in stderr, stderr
    return stderr


# --- a real run, packed and validated -------------------------------------------------------


def test_pack_and_validate_a_real_run(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sub.zip"
    code, stdout, _ = run_cli("submit", "pack", run_dir, "--out", out, capsys=capsys)
    assert code == 0 and "sub.zip" in stdout
    code, stdout, stderr = run_cli("submit", "validate", out, capsys=capsys)
    assert code == 0, stderr
    assert "valid: 3 result entries, 36 samples, 36 with thumbnails" in stdout

    members = read_members(out)
    manifest = json.loads(members.pop("bundle.json"))
    assert manifest["schema_version"] == "fiqabench.bundle/1"
    listed = {m["path"]: m for m in manifest["members"]}
    assert set(listed) == set(members)
    for name, data in members.items():  # sizes and hashes recomputed independently
        assert listed[name]["size"] == len(data)
        assert listed[name]["sha256"] == hashlib.sha256(data).hexdigest()
    assert members["results.json"] == (run_dir / "results.json").read_bytes()
    assert members["samples.jsonl"] == (run_dir / "samples.jsonl").read_bytes()
    keys = {f"{r.task}/{r.sample_id}" for r in read_samples(run_dir)}
    assert set(manifest["thumbnails"]) == keys
    assert set(manifest["thumbnails"].values()) == {n for n in members if n.startswith("thumbs/")}


def test_load_submission_returns_the_run(run_dir: Path, bundle: Path) -> None:
    submission = load_submission(bundle)
    assert submission.name == "random"
    assert submission.results == read_results(run_dir)
    assert submission.records == read_samples(run_dir)
    assert len(submission.thumbnails) == len(submission.records)
    for jpeg in submission.thumbnails.values():
        with Image.open(io.BytesIO(jpeg)) as image:
            assert image.format == "JPEG" and max(image.size) == THUMB_MAX_SIDE


def test_a_thumbnail_shows_its_sample_image(bundle: Path) -> None:
    submission = load_submission(bundle)
    samples = {s.id: s for s in TaskRegistry().get("mini-qa").samples()}
    record = next(r for r in submission.records if r.task == "mini-qa")
    with Image.open(samples[record.sample_id].images[0]) as source:
        original = np.asarray(source.convert("RGB"), dtype=float)
        aspect = source.size[0] / source.size[1]
    with Image.open(io.BytesIO(submission.thumbnails[f"mini-qa/{record.sample_id}"])) as thumb:
        small = np.asarray(thumb.convert("RGB"), dtype=float)
        assert thumb.size[0] / thumb.size[1] == pytest.approx(aspect, rel=0.02)
    # Downscaling and JPEG keep the mean colour to within a few levels.
    assert np.abs(small.mean(axis=(0, 1)) - original.mean(axis=(0, 1))).max() < 4


def test_load_submissions_reads_a_folder_sorted_by_name(bundle: Path, tmp_path: Path) -> None:
    shutil.copy(bundle, tmp_path / "b-model.zip")
    shutil.copy(bundle, tmp_path / "a-model.zip")
    (tmp_path / "notes.txt").write_text("not a bundle")
    assert [s.name for s in load_submissions(tmp_path)] == ["a-model", "b-model"]
    shutil.copy(bundle, tmp_path / "A-Model.zip")
    with pytest.raises(UserError, match="clashes with"):
        load_submissions(tmp_path)


def test_load_submissions_refuses_an_invalid_bundle(bundle: Path, tmp_path: Path) -> None:
    shutil.copy(bundle, tmp_path / "good.zip")
    (tmp_path / "bad.zip").write_bytes(b"not a zip")
    with pytest.raises(UserError, match=r"bad\.zip: not a readable zip file"):
        load_submissions(tmp_path)


# --- malformed bundles ------------------------------------------------------------------------


def test_not_a_zip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "x.zip"
    path.write_text("<html>hello</html>")
    refused(path, capsys, "x.zip: not a readable zip file")


def test_malformed_results_json(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def change(members: Members) -> None:
        members["results.json"] = b'{\n  "schema_version": "fiqabench.results/1",\n  "manifest": }'

    refused(edited(bundle, tmp_path, change), capsys, "results.json:3: malformed JSON")


def test_malformed_samples_line(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def change(members: Members) -> None:
        lines = members["samples.jsonl"].splitlines(keepends=True)
        lines[2] = b'{"sample_id": "mqa-0003", \n'
        members["samples.jsonl"] = b"".join(lines)

    refused(edited(bundle, tmp_path, change), capsys, "samples.jsonl:3: malformed JSON")


def test_sample_against_the_schema(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def change(records: list[dict[str, Any]]) -> None:
        records[4]["status"] = "great"

    path = edited(bundle, tmp_path, edit_records(change))
    refused(path, capsys, "samples.jsonl:5: status: Input should be")


def test_missing_member(bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    members = read_members(bundle)
    del members["samples.jsonl"]
    path = write_bundle(tmp_path / "x.zip", members, fix_manifest=False)
    refused(path, capsys, "missing member 'samples.jsonl'")


def test_listed_member_missing(bundle: Path, tmp_path: Path) -> None:
    members = read_members(bundle)
    thumb = next(name for name in members if name.startswith("thumbs/"))
    del members[thumb]
    report = validate_bundle(write_bundle(tmp_path / "x.zip", members, fix_manifest=False))
    assert not report.ok
    assert f"member '{thumb}' is listed in bundle.json but missing" in report.problems[0]


def test_unlisted_member(bundle: Path, tmp_path: Path) -> None:
    members = read_members(bundle)
    members["thumbs/" + "0" * 64 + ".jpg"] = b"\xff\xd8\xff"
    report = validate_bundle(write_bundle(tmp_path / "x.zip", members, fix_manifest=False))
    assert "is not listed in bundle.json" in report.problems[0]


def test_changed_member_fails_its_hash(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    members = read_members(bundle)
    members["samples.jsonl"] = members["samples.jsonl"].replace(b'"B"', b'"C"', 1)
    path = write_bundle(tmp_path / "x.zip", members, fix_manifest=False)
    refused(path, capsys, "member 'samples.jsonl' does not match its sha256 in bundle.json")


def test_unknown_bundle_schema(bundle: Path, tmp_path: Path) -> None:
    def change(members: Members) -> None:
        manifest = json.loads(members["bundle.json"])
        manifest["schema_version"] = "fiqabench.bundle/9"
        members["bundle.json"] = json.dumps(manifest).encode()

    members = read_members(bundle)
    change(members)
    report = validate_bundle(write_bundle(tmp_path / "x.zip", members, fix_manifest=False))
    assert "unsupported schema_version 'fiqabench.bundle/9'" in report.problems[0]


def test_huge_member_is_refused_from_the_directory(bundle: Path) -> None:
    limits = BundleLimits(max_samples_bytes=1000)
    report = validate_bundle(bundle, limits=limits)
    assert "member 'samples.jsonl' is" in report.problems[0]
    assert "bytes, over the limit of 1000" in report.problems[0]
    few = validate_bundle(bundle, limits=BundleLimits(max_members=5))
    assert "members, over the limit of 5" in few.problems[0]


def test_oversized_zip_directory_is_refused_before_loading(bundle: Path) -> None:
    report = validate_bundle(bundle, limits=BundleLimits(max_directory_bytes=100))
    assert "zip directory is" in report.problems[0]
    assert "bytes, over the limit of 100" in report.problems[0]


def test_zip_bomb_is_refused_before_inflating(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    members = read_members(bundle)
    members["results.json"] = b" " * (20 << 20)  # 20 MiB that deflates about 1000:1
    path = write_bundle(tmp_path / "bomb.zip", members)
    assert path.stat().st_size < 1 << 20
    refused(path, capsys, "member 'results.json' expands", "zip bomb")


def test_member_inflating_past_its_declared_size(bundle: Path, tmp_path: Path) -> None:
    path = write_bundle(tmp_path / "lying.zip", read_members(bundle))
    with zipfile.ZipFile(path) as archive:
        true_size = archive.getinfo("samples.jsonl").file_size
    # Declare 10 bytes fewer in the central directory (uncompressed size: offset 24 of an
    # entry, its name at 46): reading stops at the declared size and the member is refused.
    raw = bytearray(path.read_bytes())
    entry = raw.index(b"PK\x01\x02")
    while raw[entry + 46 : entry + 46 + len(b"samples.jsonl")] != b"samples.jsonl":
        entry = raw.index(b"PK\x01\x02", entry + 4)
    raw[entry + 24 : entry + 28] = (true_size - 10).to_bytes(4, "little")
    path.write_bytes(bytes(raw))
    problem = validate_bundle(path).problems[0]
    assert "member 'samples.jsonl' is corrupt: Bad CRC-32" in problem


# --- unsafe bundles ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../evil.txt", "contains '..': it would leave the bundle"),
        ("thumbs/../../evil.jpg", "contains '..': it would leave the bundle"),
        ("/etc/evil", "is absolute: it would leave the bundle"),
        ("C:/evil", "is absolute: it would leave the bundle"),
        ("thumbs\\evil.jpg", "contains a backslash"),
        ("index.html", "unexpected member 'index.html'"),
    ],
)
def test_member_paths_that_leave_the_bundle(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, expected: str
) -> None:
    members = read_members(bundle)
    members[name] = b"<script>alert(1)</script>"
    folder = tmp_path / "deep" / "er"
    folder.mkdir(parents=True)
    path = write_bundle(folder / "x.zip", members)
    refused(path, capsys, expected)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["deep", "er", "x.zip"]


def test_symlink_and_duplicate_members(bundle: Path, tmp_path: Path) -> None:
    members = read_members(bundle)
    link = tmp_path / "link.zip"
    with zipfile.ZipFile(link, "w") as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            if name == "samples.jsonl":
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, data)
    assert "member 'samples.jsonl' is a symbolic link" in validate_bundle(link).problems[0]
    twice = tmp_path / "twice.zip"
    with zipfile.ZipFile(twice, "w") as archive, pytest.warns(UserWarning, match="Duplicate"):
        for name, data in [*members.items(), ("results.json", members["results.json"])]:
            archive.writestr(name, data)
    assert "member 'results.json' appears twice" in validate_bundle(twice).problems[0]


def test_thumbnail_map_pointing_outside(bundle: Path, tmp_path: Path) -> None:
    def change(members: Members) -> None:
        manifest = json.loads(members["bundle.json"])
        key = next(iter(manifest["thumbnails"]))
        manifest["thumbnails"][key] = "../../../etc/passwd"
        members["bundle.json"] = json.dumps(manifest).encode()

    report = validate_bundle(edited(bundle, tmp_path, change))
    assert (
        "points at '../../../etc/passwd', which is not a thumbs/<sha256>.jpg member"
        in (report.problems[0])
    )


def test_thumbnail_that_is_not_a_jpeg(bundle: Path, tmp_path: Path) -> None:
    payload = b"\xff\xd8\xff<svg onload=alert(1)>"
    name = f"thumbs/{hashlib.sha256(payload).hexdigest()}.jpg"

    def change(members: Members) -> None:
        manifest = json.loads(members["bundle.json"])
        old = next(iter(manifest["thumbnails"].values()))
        manifest["thumbnails"] = {
            k: name if v == old else v for k, v in manifest["thumbnails"].items()
        }
        del members[old]
        members[name] = payload
        members["bundle.json"] = json.dumps(manifest).encode()

    report = validate_bundle(edited(bundle, tmp_path, change))
    assert f"member '{name}': not a JPEG file" in report.problems[0]


def test_script_in_model_alias(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    alias = "<script>alert(1)</script>"

    def change(document: dict[str, Any]) -> None:
        document["manifest"]["model"]["alias"] = alias
        for entry in document["results"].values():
            entry["model"] = alias

    stderr = refused(edited(bundle, tmp_path, edit_results(change)), capsys)
    lines = stderr.splitlines()
    assert len(lines) == 4  # the manifest and the three entries' copies, each once
    places = ["manifest", "results.mini-qa", "results.mini-fiqa:simple", "results.mini-degradation"]
    for line, place in zip(lines, places, strict=True):
        assert line.startswith("error: ") and f"results.json: {place}." in line
        assert line.endswith(
            "'<script>alert(1)</script>' contains < >, which identifiers may not hold"
        )


def test_script_in_a_response(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def change(records: list[dict[str, Any]]) -> None:
        records[1]["response"] = 'B <img src=x onerror="alert(1)">'

    path = edited(bundle, tmp_path, edit_records(change))
    refused(path, capsys, "samples.jsonl:2: response", "contains HTML or script markup '<img'")


def test_control_characters_in_an_error(bundle: Path, tmp_path: Path) -> None:
    def change(records: list[dict[str, Any]]) -> None:
        records[0]["error"] = "boom\x1b]0;pwned\x07"

    report = validate_bundle(edited(bundle, tmp_path, edit_records(change)))
    assert (
        "samples.jsonl:1: error 'boom\\x1b]0;pwned\\x07' contains the control character U+001B"
        in (report.problems[0])
    )


def test_problems_never_carry_control_characters(bundle: Path, tmp_path: Path) -> None:
    def change(members: Members) -> None:
        manifest = json.loads(members["bundle.json"])
        manifest["thumbnails"] = {"\x1b[2J": 5}
        members["bundle.json"] = json.dumps(manifest).encode()

    problem = validate_bundle(edited(bundle, tmp_path, change)).problems[0]
    assert "bundle.json: thumbnails.\\x1b[2J: Input should be a valid string" in problem
    assert "\x1b" not in problem


def test_bad_bundle_file_name(bundle: Path, tmp_path: Path) -> None:
    path = tmp_path / "<b>x.zip"
    shutil.copy(bundle, path)
    assert "bundle file names may use only" in validate_bundle(path).problems[0]


def test_pack_refuses_a_run_with_markup_in_its_alias(run_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    document = json.loads((copy / "results.json").read_text())
    document["manifest"]["model"]["alias"] = 'x" onmouseover="alert(1)'
    (copy / "results.json").write_text(json.dumps(document))
    with pytest.raises(UserError, match=r"does not make a valid bundle.*manifest\.model\.alias"):
        pack_bundle(copy, tmp_path / "out.zip")
    assert not (tmp_path / "out.zip").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # no draft left behind


# --- consistency and tasks --------------------------------------------------------------------


def test_unknown_task(bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def rename(members: Members) -> None:
        for name in ("results.json", "samples.jsonl", "bundle.json"):
            members[name] = members[name].replace(b'"mini-qa', b'"mini-qaa')

    refused(
        edited(bundle, tmp_path, rename),
        capsys,
        "unknown task 'mini-qaa' (did you mean mini-qa",
    )


def test_partial_results_of_a_shard(bundle: Path, tmp_path: Path) -> None:
    def shard(document: dict[str, Any]) -> None:
        document["manifest"]["shard"] = "2/4"

    report = validate_bundle(edited(bundle, tmp_path, edit_results(shard)))
    assert any("partial results of shard 2/4" in p for p in report.problems)


def test_duplicate_sample(bundle: Path, tmp_path: Path) -> None:
    def change(records: list[dict[str, Any]]) -> None:
        records.append(records[0])

    report = validate_bundle(edited(bundle, tmp_path, edit_records(change)))
    assert any("appears twice (first on line 1)" in p for p in report.problems)


# --- tampered numbers: caught only by re-scoring ----------------------------------------------


def test_tampered_metric_shows_the_diff(
    run_dir: Path, bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    true_accuracy = read_results(run_dir).results["mini-qa"].metrics["accuracy"]
    assert true_accuracy is not None

    def change(document: dict[str, Any]) -> None:
        document["results"]["mini-qa"]["metrics"]["accuracy"] = 0.97

    path = edited(bundle, tmp_path, edit_results(change))
    code, stdout, stderr = run_cli("submit", "validate", path, capsys=capsys)
    assert code == 1
    assert "1 reported values differ from re-scoring" in stderr
    row = next(line for line in stdout.splitlines() if "metrics.accuracy" in line)
    cells = [cell.strip() for cell in row.strip("│ ").split("│")]
    assert cells == ["mini-qa", "metrics.accuracy", "0.97", repr(true_accuracy)]
    with pytest.raises(UserError, match=r"metrics\.accuracy: reported 0\.97, recomputed"):
        load_submission(path)


def test_tampered_response_changes_the_recomputed_accuracy(bundle: Path, tmp_path: Path) -> None:
    answers = {s.id: s.item.answer for s in TaskRegistry().get("mini-qa").samples()}
    reported_records = load_submission(bundle).records
    qa = [r for r in reported_records if r.task == "mini-qa" and r.status == "ok"]
    wrong = next(r for r in qa if r.meta["type"] == "single" and r.correct is False)

    def change(records: list[dict[str, Any]]) -> None:
        for record in records:
            if record["task"] == "mini-qa" and record["sample_id"] == wrong.sample_id:
                record["response"] = answers[wrong.sample_id]

    report = validate_bundle(edited(bundle, tmp_path, edit_records(change)))
    diffs = {(d.entry, d.field): d for d in report.diffs}
    sample = diffs[(f"mini-qa/{wrong.sample_id}", "correct")]
    assert (sample.reported, sample.recomputed) == (False, True)
    accuracy = diffs[("mini-qa", "metrics.accuracy")]
    closed = [r for r in qa if r.correct is not None]
    assert accuracy.reported == pytest.approx(sum(bool(r.correct) for r in closed) / len(closed))
    assert accuracy.recomputed == pytest.approx(
        (sum(bool(r.correct) for r in closed) + 1) / len(closed)
    )


def test_tampered_per_sample_verdict(bundle: Path, tmp_path: Path) -> None:
    def change(records: list[dict[str, Any]]) -> None:
        record = next(r for r in records if r["task"] == "mini-qa" and r["correct"] is False)
        record["correct"] = True

    report = validate_bundle(edited(bundle, tmp_path, edit_records(change)))
    assert [d.field for d in report.diffs] == ["correct"]


def test_entry_that_re_scoring_does_not_produce(bundle: Path, tmp_path: Path) -> None:
    def change(document: dict[str, Any]) -> None:
        document["results"]["mini-qa:bonus"] = document["results"]["mini-qa"]

    report = validate_bundle(edited(bundle, tmp_path, edit_results(change)))
    assert [(d.entry, d.field, d.recomputed) for d in report.diffs] == [
        ("mini-qa:bonus", "(entry)", "not produced by re-scoring")
    ]


# --- the rules themselves ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["random", "hf:Qwen/Qwen2.5-VL-7B-Instruct", "/models/my model@v1", "mini-fiqa:simple", "1"],
)
def test_plain_identifiers(value: str) -> None:
    assert identifier_problem(value) is None


@pytest.mark.parametrize(
    "value", ["", "a<b", "x&y", 'say "hi"', "it's", "tab\there", " padded", "é", "x" * 257]
)
def test_not_identifiers(value: str) -> None:
    assert identifier_problem(value) is not None


@pytest.mark.parametrize(
    "value",
    [
        "<think>blur? noise?</think> B",
        "sharpness a < b, score <50",
        "line one\nline two\ttabbed\r\n",
        "Qualität: gut 👍",
        "<answer>A</answer>",
        "<image> shows a blurred face",
    ],
)
def test_acceptable_free_text(value: str) -> None:
    assert free_text_problem(value) is None


@pytest.mark.parametrize(
    "value",
    [
        "<script>alert(1)</script>",
        "< SCRIPT src=//x>",
        "</style>",
        "<iframe src=x>",
        '<b onclick="x()">hi</b>',
        "[link](javascript:alert(1))",
        "<!-- hidden -->",
        "nul\x00byte",
        "bell\x07",
        "right-to-left \u202e override",
    ],
)
def test_refused_free_text(value: str) -> None:
    assert free_text_problem(value) is not None


def test_number_comparison() -> None:
    assert same(3, 3) and not same(3, 4)
    assert same(0.5, 0.5 * (1 + 5e-10)) and not same(0.5, 0.5 * (1 + 5e-9))
    assert same(0.0, 1e-13) and not same(0.0, 1e-9)
    assert same(None, math.nan) and same(math.nan, math.nan) and not same(None, 0.0)
    assert not same(True, 1) and not same("1", 1)


def test_clean_thumbnail_drops_metadata_and_refuses_big_images() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 10, 10)).save(buffer, "JPEG", comment=b"<script>")
    assert b"<script>" in buffer.getvalue()
    cleaned = clean_thumbnail(buffer.getvalue())
    assert b"<script>" not in cleaned
    with Image.open(io.BytesIO(cleaned)) as image:
        assert image.size == (40, 30)
        assert np.abs(np.asarray(image, dtype=float).mean(axis=(0, 1)) - (200, 10, 10)).max() < 3
    big = io.BytesIO()
    Image.new("RGB", (THUMB_MAX_SIDE + 1, 10)).save(big, "JPEG")
    with pytest.raises(ValueError, match="over 160 on a side"):
        clean_thumbnail(big.getvalue())
    noise = np.random.default_rng(0).integers(0, 255, (90, 120, 3), dtype=np.uint8)
    whole = io.BytesIO()
    Image.fromarray(noise).save(whole, "JPEG")
    with pytest.raises(ValueError, match="cannot decode the JPEG: image file is truncated"):
        clean_thumbnail(whole.getvalue()[: len(whole.getvalue()) // 2])
    with pytest.raises(ValueError, match="not a JPEG file"):
        clean_thumbnail(b"\x89PNG\r\n\x1a\n")


def test_read_bundle_returns_verified_members(bundle: Path, run_dir: Path) -> None:
    contents = read_bundle(bundle)
    assert contents.results == (run_dir / "results.json").read_bytes()
    assert contents.samples == (run_dir / "samples.jsonl").read_bytes()
    assert contents.manifest.fiqabench_version == fiqabench.__version__
    assert set(contents.thumbnails) == {f"{r.task}/{r.sample_id}" for r in read_samples(run_dir)}


def test_thumbnails_one_per_image_capped_and_only_for_the_spec_that_ran(run_dir: Path) -> None:
    records = [r for r in read_samples(run_dir) if r.task == "mini-qa"]
    registry = TaskRegistry()
    samples = LocalTasks(registry).samples("mini-qa")
    assert samples is not None
    images = {samples[r.sample_id].images[0] for r in records}
    assert len(images) < len(records)  # mini-qa asks several questions about each image
    made = LocalThumbnails(LocalTasks(registry))
    every = made.for_records(records)
    assert set(every) == {f"mini-qa/{r.sample_id}" for r in records}
    assert len({id(data) for data in every.values()}) == len(images)  # each image encoded once
    # Packing caps distinct images, first come first served in record order.
    capped = collect_thumbnails(registry, records, max_images=2)
    first_two = list(dict.fromkeys(samples[r.sample_id].images[0] for r in records))[:2]
    kept = [r for r in records if samples[r.sample_id].images[0] in first_two]
    assert set(capped) == {f"mini-qa/{r.sample_id}" for r in kept}
    # A run of another version of the task's spec gets no thumbnail (nor question) from here.
    manifest = read_results(run_dir).manifest.model_copy(deep=True)
    for task in manifest.tasks:
        task.spec_sha256 = "0" * 64
    assert made.for_records(records, manifest) == {}
    assert LocalTasks(None).samples("mini-qa") is None


def test_default_bundle_path_keeps_dotted_names(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "qwen2.5-vl-7b"
    assert default_bundle_path(run) == tmp_path / "runs" / "qwen2.5-vl-7b.zip"


def test_logits_runs_name_their_protocol(bundle: Path, tmp_path: Path) -> None:
    """`eval --scoring logits` appends +level-logits to every entry's protocol; re-scoring
    must expect it, and a logits run whose entries lack it is refused."""

    def logits(document: dict[str, Any]) -> None:
        document["manifest"]["scoring"] = "logits"

    def named(document: dict[str, Any]) -> None:
        logits(document)
        for entry in document["results"].values():
            entry["protocol"] += "+level-logits"

    assert validate_bundle(edited(bundle, tmp_path, edit_results(named))).ok
    report = validate_bundle(edited(bundle, tmp_path, edit_results(logits)))
    assert {(d.field, d.recomputed.endswith("+level-logits")) for d in report.diffs} == {
        ("protocol", True)
    }


def test_diff_summary_names_another_fiqabench(bundle: Path, tmp_path: Path) -> None:
    def change(members: Members) -> None:
        manifest = json.loads(members["bundle.json"])
        manifest["fiqabench_version"] = "0.0.1"
        members["bundle.json"] = json.dumps(manifest).encode()
        edit_results(lambda d: d["results"]["mini-qa"]["counts"].update(ok=1))(members)

    report = validate_bundle(edited(bundle, tmp_path, change))
    assert "mini-qa counts.ok: reported 1, recomputed" in report.summary()
    assert "(packed by fiqabench 0.0.1, re-scored by" in report.summary()


def test_printable_escapes_terminal_codes() -> None:
    assert printable("a\x1b[31mb\u202ec\nd") == "a\\x1b[31mb\\u202ec\nd"


# --- results that would look better than the model: left-out samples, hidden answers ---------


def test_left_out_samples_are_refused(bundle: Path, tmp_path: Path) -> None:
    def drop_wrong(members: Members) -> None:
        records = [json.loads(line) for line in members["samples.jsonl"].splitlines()]
        kept = [r for r in records if r["task"] != "mini-qa" or r["correct"] is not False]
        members["samples.jsonl"] = "".join(json.dumps(r) + "\n" for r in kept).encode()
        n_kept = sum(r["task"] == "mini-qa" for r in kept)
        manifest = json.loads(members["bundle.json"])
        ids = {f"{r['task']}/{r['sample_id']}" for r in kept}
        manifest["thumbnails"] = {k: v for k, v in manifest["thumbnails"].items() if k in ids}
        members["bundle.json"] = json.dumps(manifest).encode()
        edit_results(
            lambda d: [
                t.update(n_samples=n_kept) for t in d["manifest"]["tasks"] if t["name"] == "mini-qa"
            ]
        )(members)

    report = validate_bundle(edited(bundle, tmp_path, drop_wrong))
    assert any("task 'mini-qa' has" in p and "samples missing" in p for p in report.problems)


def test_wrong_answers_hidden_as_errors_are_refused(bundle: Path, tmp_path: Path) -> None:
    def hide(records: list[dict[str, Any]]) -> None:
        for record in records:
            if record["correct"] is False:
                record.update(status="error", response=None, error="timeout", correct=None)

    report = validate_bundle(edited(bundle, tmp_path, edit_records(hide)))
    assert any("samples are errors (more than 5%)" in p for p in report.problems)


def test_a_verdict_credited_to_an_unnamed_judge_is_refused(bundle: Path, tmp_path: Path) -> None:
    def forge(records: list[dict[str, Any]]) -> None:
        for record in records:
            if record["task"] == "mini-qa" and record["correct"] is False:
                record.update(parse_stage="llm-extractor", correct=True, status="ok")
                break

    report = validate_bundle(edited(bundle, tmp_path, edit_records(forge)))
    assert any(
        "decided by an LLM extractor but its results name none" in p for p in report.problems
    )


def test_a_number_too_long_for_python_is_refused(bundle: Path, tmp_path: Path) -> None:
    def huge(members: Members) -> None:
        first, rest = members["samples.jsonl"].split(b"\n", 1)
        number = b'"latency_s":' + b"9" * 5000 + b',"x":'
        members["samples.jsonl"] = first.replace(b'"latency_s":', number, 1) + b"\n" + rest

    report = validate_bundle(edited(bundle, tmp_path, huge))
    assert any("samples.jsonl:1: unreadable JSON" in p for p in report.problems)
