"""Data preparation: turn a dataset as distributed into a task-ready folder.

Every `prepare_*` function writes into its output folder:

- ``images.jsonl``: one JSON object per image, sorted by id:
  ``{"id": ..., "image": ..., "subject": <identity or null>, ...dataset fields}``.
  `id` is the image's POSIX path relative to the dataset's image folder (stable across
  machines; comparisons and MOS files refer to images by it). `image` is where the file is,
  relative to the output folder: images are referenced in place, never copied, so moving the
  output folder without the dataset breaks the references (the manifest records both absolute
  folders, to repair them). Where no relative path exists (another drive), `image` is absolute.
- ``comparisons.csv`` (LFW, SCface): ``a,b,mated[,similarity_<model>...]`` over image ids,
  written by `fiqabench.benchmark.comparisons.write_comparisons_csv`.
- ``mos.csv`` (MOS datasets): ``image,mos`` with the image id.
- ``manifest.json``: format version, source, counts, files, what was computed (similarity
  models with failures to acquire and timing), skipped files and notes.

Existing files of the same names are overwritten; other files in the folder are left alone.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from PIL import Image

from fiqabench import __version__
from fiqabench.benchmark import biometrics
from fiqabench.benchmark.biometrics import FaceRecognizer, Progress
from fiqabench.benchmark.comparisons import (
    Comparisons,
    check_images_exist,
    examples_text,
    image_id_problem,
    read_lfw_pairs,
    write_comparisons_csv,
)
from fiqabench.benchmark.images import load_rgb
from fiqabench.benchmark.surveillance import DISTANCES, ScfaceName, parse_scface_name
from fiqabench.errors import MissingExtraError, UserError

FORMAT = "fiqabench-prepared/1"
IMAGES_FILE = "images.jsonl"
COMPARISONS_FILE = "comparisons.csv"
MOS_FILE = "mos.csv"
MANIFEST_FILE = "manifest.json"
ALIGNED_FOLDER = "aligned"

LFW_IMAGE_FOLDERS = ("lfw", "lfw-deepfunneled", "lfw_funneled", "lfw-funneled", ".")
"""Where the person folders may lie inside an LFW source folder, first match wins."""

Manifest = dict[str, Any]
ImageRecord = dict[str, Any]


# ---------------------------------------------------------------------------------------------
# LFW


def prepare_lfw(
    src: Path,
    out: Path,
    *,
    recognizers: Sequence[FaceRecognizer] | None = None,
    limit_pairs: int | None = None,
    aligned: bool = False,
    pairs: Path | None = None,
    progress: Progress | None = None,
) -> Manifest:
    """Prepare LFW View 2 for error-versus-reject: images, scored comparisons, manifest.

    `src` holds ``pairs.txt`` (or pass `pairs`) and the person folders, either directly
    (``src/<name>/<name>_0001.jpg``) or in ``lfw/`` (also ``lfw-deepfunneled/``,
    ``lfw_funneled/``). Writes ``images.jsonl`` (every image the pairs use; `subject` is the
    person), ``comparisons.csv`` with one ``similarity_<model>`` column per recognizer and
    ``manifest.json``. `recognizers` defaults to SFace (extra ``face``); pass ``()`` to skip
    similarities. `limit_pairs` keeps the first ceil(n/2) matched and floor(n/2) mismatched
    pairs in file order, for a quick run. `aligned` also saves each face's 112x112 SFace
    alignment as ``aligned/<name>/<name>_0001.png`` (field `aligned`, null when no face is
    found; this costs one more detection per image). `progress(done, total)` counts images.
    """
    pairs_file = pairs if pairs is not None else src / "pairs.txt"
    if not pairs_file.is_file():
        raise UserError("no LFW pairs.txt here (give its path with 'pairs')", path=pairs_file)
    comparisons = read_lfw_pairs(pairs_file)
    if limit_pairs is not None:
        comparisons = _balanced_subset(comparisons, limit_pairs)
    image_ids = sorted(comparisons.image_ids())
    image_root = _lfw_image_root(src, image_ids)
    check_images_exist(image_root, image_ids, source=pairs_file)
    chosen = biometrics.default_recognizers() if recognizers is None else list(recognizers)

    comparisons, computed = _scored(comparisons, image_root, chosen, progress)
    records = [_lfw_record(image_id, image_root, out) for image_id in image_ids]
    if aligned:
        _save_aligned_crops(records, image_root, out, _sface_of(chosen))
    manifest = _manifest("lfw", src, image_root, out, similarity=computed)
    manifest["pairs_file"] = str(pairs_file.resolve())
    manifest["counts"] = {
        **_comparison_counts(comparisons),
        "images": len(records),
        "subjects": len({record["subject"] for record in records}),
        "limit_pairs": limit_pairs,
    }
    if aligned:
        manifest["files"]["aligned"] = ALIGNED_FOLDER + "/"
        manifest["notes"].append(
            "aligned: 112x112 SFace alignment (YuNet landmarks, OpenCV alignCrop) of the "
            "largest face, saved as PNG"
        )
    return _write_outputs(out, records, manifest, comparisons=comparisons)


def _balanced_subset(comparisons: Comparisons, limit: int) -> Comparisons:
    if limit < 1:
        raise UserError(f"limit_pairs must be at least 1, not {limit}")
    mated = np.flatnonzero(comparisons.mated)[: (limit + 1) // 2]
    non_mated = np.flatnonzero(~comparisons.mated)[: limit // 2]
    return comparisons.take(np.sort(np.concatenate([mated, non_mated])))


def _lfw_image_root(src: Path, image_ids: Sequence[str]) -> Path:
    """The first candidate folder that holds the first image the pairs name."""
    if not image_ids:
        return src
    for folder in LFW_IMAGE_FOLDERS:
        if (src / folder / image_ids[0]).is_file():
            return src / folder if folder != "." else src
    return src  # the missing-image check names the files


def _lfw_record(image_id: str, image_root: Path, out: Path) -> ImageRecord:
    return {
        "id": image_id,
        "image": _reference(image_root / image_id, out),
        "subject": PurePosixPath(image_id).parts[0],
    }


def _sface_of(recognizers: Sequence[FaceRecognizer]) -> biometrics.SFaceRecognizer:
    for recognizer in recognizers:
        if isinstance(recognizer, biometrics.SFaceRecognizer):
            return recognizer
    return biometrics.SFaceRecognizer()


def _save_aligned_crops(
    records: list[ImageRecord],
    image_root: Path,
    out: Path,
    sface: biometrics.SFaceRecognizer,
) -> None:
    for record in records:
        crop = sface.align(np.asarray(load_rgb(image_root / record["id"])))
        if crop is None:
            record["aligned"] = None
            continue
        relative = PurePosixPath(ALIGNED_FOLDER, record["id"]).with_suffix(".png")
        target = out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(crop).save(target)
        record["aligned"] = relative.as_posix()


# ---------------------------------------------------------------------------------------------
# SCface


def prepare_scface(
    src: Path,
    out: Path,
    *,
    recognizers: Sequence[FaceRecognizer] | None = None,
    max_impostors: int | None = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> Manifest:
    """Prepare SCface surveillance images for distance sensitivity and error-versus-reject.

    Reads every file under `src` (subfolders included) named ``{id}_cam{1-5}_{1,2,3}.jpg`` or
    ``.png``; any other file is listed under `skipped` in the manifest. Each image record
    carries `subject` (the zero-padded id), `camera` (1-5), `distance` (1 far 4.20 m,
    2 medium 2.60 m, 3 close 1.00 m), `distance_name` and `distance_m`. Comparisons: every
    pair of images of one subject is mated; pairs across subjects are non-mated, all of them
    or `max_impostors` drawn at random with `seed` (all pairs are enumerated first: fine for
    SCface's few thousand images). Similarities: `recognizers`, by default SFace when the
    ``face`` extra is installed; without it (or with ``()``) ``comparisons.csv`` has no
    similarity column and the manifest says why.
    """
    if max_impostors is not None and max_impostors < 0:
        raise UserError(f"max_impostors must be 0 or more, not {max_impostors}")
    images, skipped = _scan_scface(src, out)
    records = [_scface_record(image_id, name, src, out) for image_id, name in images]
    comparisons = _scface_comparisons(records, max_impostors, seed)
    chosen, notes = _optional_recognizers(recognizers)
    comparisons, computed = _scored(comparisons, src, chosen, progress)
    manifest = _manifest("scface", src, src, out, similarity=computed)
    manifest["notes"].extend(notes)
    manifest["counts"] = {
        **_comparison_counts(comparisons),
        "images": len(records),
        "subjects": len({record["subject"] for record in records}),
        "skipped_files": len(skipped),
        "max_impostors": max_impostors,
        "seed": seed,
    }
    manifest["distances"] = {
        str(code): {"name": name, "metres": metres} for code, (name, metres) in DISTANCES.items()
    }
    manifest["skipped"] = skipped
    return _write_outputs(out, records, manifest, comparisons=comparisons)


def _scan_scface(src: Path, out: Path) -> tuple[list[tuple[str, ScfaceName]], list[dict[str, str]]]:
    """SCface images (id, parsed name) sorted by id, and the other files with the reason."""
    if not src.is_dir():
        raise UserError("not a folder", path=src)
    output = out.resolve()
    images: list[tuple[str, ScfaceName]] = []
    skipped: list[dict[str, str]] = []
    first_of: dict[ScfaceName, str] = {}
    for path in sorted(src.rglob("*")):
        if not path.is_file() or path.resolve().is_relative_to(output):
            continue
        image_id = path.relative_to(src).as_posix()
        name = parse_scface_name(path.name)
        if name is None:
            skipped.append({"file": image_id, "reason": "not {id}_cam{1-5}_{1,2,3}.jpg/.png"})
            continue
        if name in first_of:
            raise UserError(
                f"{image_id} and {first_of[name]} are the same SCface capture", path=src
            )
        first_of[name] = image_id
        images.append((image_id, name))
    if not images:
        raise UserError("no SCface images named {id}_cam{1-5}_{1,2,3}.jpg/.png here", path=src)
    return sorted(images), skipped


def _scface_record(image_id: str, name: ScfaceName, src: Path, out: Path) -> ImageRecord:
    distance_name, metres = DISTANCES[name.distance]
    return {
        "id": image_id,
        "image": _reference(src / image_id, out),
        "subject": name.subject,
        "camera": name.camera,
        "distance": name.distance,
        "distance_name": distance_name,
        "distance_m": metres,
    }


def _scface_comparisons(
    records: Sequence[ImageRecord], max_impostors: int | None, seed: int
) -> Comparisons:
    """Mated pairs within subjects, then non-mated pairs across subjects (maybe a sample)."""
    ids = np.asarray([record["id"] for record in records], dtype=np.str_)
    subjects = np.asarray([record["subject"] for record in records], dtype=np.str_)
    first, second = np.triu_indices(len(records), k=1)
    mated = subjects[first] == subjects[second]
    impostors = np.flatnonzero(~mated)
    if max_impostors is not None and len(impostors) > max_impostors:
        rng = np.random.default_rng(seed)
        impostors = np.sort(rng.choice(impostors, size=max_impostors, replace=False))
    order = np.concatenate([np.flatnonzero(mated), impostors])
    return Comparisons(ids[first[order]], ids[second[order]], mated[order])


def _optional_recognizers(
    recognizers: Sequence[FaceRecognizer] | None,
) -> tuple[list[FaceRecognizer], list[str]]:
    if recognizers is not None:
        notes = [] if recognizers else ["similarity not computed: no recognizer was given"]
        return list(recognizers), notes
    try:
        return biometrics.default_recognizers(), []
    except MissingExtraError as exc:
        return [], [f"similarity not computed: {exc}"]


# ---------------------------------------------------------------------------------------------
# MOS datasets


@dataclass(frozen=True)
class MosLayout:
    """Column names (case-insensitive, in order of preference) of a MOS label file."""

    image_columns: tuple[str, ...]
    score_columns: tuple[str, ...]
    description: str


MOS_LAYOUTS: dict[str, MosLayout] = {
    "gfiqa": MosLayout(
        ("img_name",),
        ("mos",),
        "GFIQA-20k: CSV img_name,mos (as in pyiqa's meta_info_GFIQADataset.csv)",
    ),
    "cgfiqa": MosLayout(
        ("img_path", "image"),
        ("score", "mos"),
        "CGFIQA-40k: the official <split>/label.json {'Image': [...], 'MOS': [...]} with "
        "images in <split>/img/, or pyiqa's CSV img_path,score,official_split",
    ),
    "vquala": MosLayout(
        ("image_name", "image", "img_name", "filename", "name"),
        ("mos", "score"),
        "VQualA 2025 FIQA challenge: CSV of image name and MOS (column names not verified "
        "against the challenge files; 'auto' covers the usual ones)",
    ),
}
AUTO_IMAGE_COLUMNS = ("image", "img_name", "name", "filename", "image_name", "img_path")
AUTO_SCORE_COLUMNS = ("mos", "score", "quality", "label")


def prepare_mos(images: Path, csv: Path, out: Path, *, layout: str = "auto") -> Manifest:
    """Prepare a MOS dataset for correlation with judges' scores: images.jsonl and mos.csv.

    `images` is the image folder; `csv` the label file: a CSV (comma, semicolon or tab
    separated, with a header) or a JSON file, either column lists ``{"Image": [...],
    "MOS": [...]}`` or a list of objects. `layout` picks the image and score columns:

    - ``auto``: the one image column among image, img_name, name, filename, image_name,
      img_path and the one score column among mos, score, quality, label (any case);
    - ``gfiqa``: img_name, mos (GFIQA-20k);
    - ``cgfiqa``: img_path or Image, score or MOS (CGFIQA-40k label.json or pyiqa's CSV);
    - ``vquala``: image_name/image/img_name/filename/name, mos/score (VQualA 2025 FIQA);
    - ``"<image column>,<score column>"``: any other file.

    An image value is a path relative to `images`; when no file is there, a file of that
    name anywhere under `images` is used if there is exactly one. Every image must exist
    (the error says how many are missing and names the first few); scores must be finite
    numbers and images listed once (errors name the file and line, or the JSON entry).
    Other columns are copied into the image records as extra fields.
    """
    if not images.is_dir():
        raise UserError("not a folder", path=images)
    table = _read_label_table(csv)
    image_column, score_column = _mos_columns(table, layout)
    locator = _ImageLocator(images)
    records, mos = _mos_records(table, image_column, score_column, locator, out)
    manifest = _manifest("mos", images, images, out, similarity={})
    manifest["label_file"] = str(csv.resolve())
    manifest["layout"] = layout
    manifest["columns"] = {"image": image_column, "mos": score_column}
    manifest["counts"] = {"images": len(records), "found_by_file_name": locator.by_name}
    manifest["mos_range"] = [min(mos.values()), max(mos.values())]
    manifest["files"]["mos"] = MOS_FILE
    _write_mos_csv(out / MOS_FILE, mos)
    return _write_outputs(out, records, manifest, comparisons=None)


@dataclass
class _LabelTable:
    """Rows of a label file as column -> value; `number` is a CSV line or a JSON entry."""

    path: Path
    columns: list[str]
    rows: list[tuple[int, dict[str, Any]]]
    is_json: bool

    def error(self, number: int, message: str) -> UserError:
        if self.is_json:
            return UserError(f"entry {number}: {message}", path=self.path)
        return UserError(message, path=self.path, line=number)


def _read_label_table(path: Path) -> _LabelTable:
    if not path.is_file():
        raise UserError("file not found", path=path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read file: {exc}", path=path) from None
    table = _json_table(path, text) if path.suffix.lower() == ".json" else _csv_table(path, text)
    if not table.rows:
        raise UserError("no labelled images in this file", path=path)
    return table


def _csv_table(path: Path, text: str) -> _LabelTable:
    lines = text.splitlines()
    header_line = next((line for line in lines if line.strip()), "")
    try:
        dialect: Any = csv.Sniffer().sniff(header_line, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(lines, dialect)
    header_cells = next((cells for cells in reader if any(cell.strip() for cell in cells)), [])
    header = [cell.strip() for cell in header_cells]
    rows: list[tuple[int, dict[str, Any]]] = []
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(header):
            raise UserError(
                f"expected {len(header)} values (as in the header), found {len(cells)}",
                path=path,
                line=reader.line_num,
            )
        rows.append((reader.line_num, dict(zip(header, cells, strict=True))))
    return _LabelTable(path, header, rows, is_json=False)


def _json_table(path: Path, text: str) -> _LabelTable:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"invalid JSON: {exc.msg}", path=path, line=exc.lineno) from None
    if isinstance(data, dict) and all(isinstance(value, list) for value in data.values()):
        lengths = {len(value) for value in data.values()}
        if len(lengths) > 1:
            raise UserError(f"the JSON lists differ in length: {sorted(lengths)}", path=path)
        columns = list(data)
        rows = [
            dict(zip(columns, values, strict=True)) for values in zip(*data.values(), strict=True)
        ]
    elif isinstance(data, list) and all(isinstance(row, dict) for row in data):
        rows = data
        columns = list(dict.fromkeys(key for row in rows for key in row))
    else:
        raise UserError(
            "expected column lists {'Image': [...], 'MOS': [...]} or a list of objects",
            path=path,
        )
    return _LabelTable(path, columns, list(enumerate(rows, start=1)), is_json=True)


def _mos_columns(table: _LabelTable, layout: str) -> tuple[str, str]:
    """The (image, score) column names of `table` under `layout`."""
    if "," in layout:
        wanted = [name.strip() for name in layout.split(",")]
        if len(wanted) != 2:
            raise UserError(f"a custom layout is '<image column>,<score column>', not '{layout}'")
        return _one_column(table, wanted[:1], "image"), _one_column(table, wanted[1:], "score")
    if layout == "auto":
        return (
            _one_column(table, AUTO_IMAGE_COLUMNS, "image", unique=True),
            _one_column(table, AUTO_SCORE_COLUMNS, "score", unique=True),
        )
    if layout not in MOS_LAYOUTS:
        known = ", ".join(["auto", *MOS_LAYOUTS])
        raise UserError(
            f"unknown layout '{layout}': use {known} or '<image column>,<score column>'"
        )
    chosen = MOS_LAYOUTS[layout]
    return (
        _one_column(table, chosen.image_columns, "image"),
        _one_column(table, chosen.score_columns, "score"),
    )


def _one_column(
    table: _LabelTable, candidates: Sequence[str], role: str, *, unique: bool = False
) -> str:
    """The table column matching the first candidate (any case); with `unique`, the only one."""
    by_lower: dict[str, list[str]] = {}
    for column in table.columns:
        by_lower.setdefault(column.lower(), []).append(column)
    found = [column for name in candidates for column in by_lower.get(name.lower(), [])]
    if not found:
        raise UserError(
            f"no {role} column: expected one of {', '.join(candidates)} "
            f"(columns: {', '.join(table.columns)})",
            path=table.path,
        )
    if len(found) > 1 and (unique or len(by_lower[found[0].lower()]) > 1):
        raise UserError(
            f"several possible {role} columns ({', '.join(found)}): choose with layout "
            "'<image column>,<score column>'",
            path=table.path,
        )
    return found[0]


class _ImageLocator:
    """Finds a label's image under the image folder: by its path, else by its file name."""

    def __init__(self, root: Path):
        self.root = root
        self.by_name = 0
        self._names: dict[str, list[str]] | None = None

    def find(self, value: str) -> str | None:
        """The image id (path relative to the root), or None when no single file matches."""
        if (self.root / value).is_file():
            return value
        matches = self._index().get(PurePosixPath(value).name, [])
        if len(matches) != 1:
            return None
        self.by_name += 1
        return matches[0]

    def _index(self) -> dict[str, list[str]]:
        if self._names is None:
            self._names = {}
            for path in sorted(self.root.rglob("*")):
                if path.is_file():
                    relative = path.relative_to(self.root).as_posix()
                    self._names.setdefault(path.name, []).append(relative)
        return self._names


def _mos_records(
    table: _LabelTable,
    image_column: str,
    score_column: str,
    locator: _ImageLocator,
    out: Path,
) -> tuple[list[ImageRecord], dict[str, float]]:
    records: dict[str, ImageRecord] = {}
    first_number: dict[str, int] = {}
    missing: list[str] = []
    for number, row in table.rows:
        value = _image_value(row.get(image_column), table, number)
        score = _score_value(row.get(score_column), table, number)
        image_id = locator.find(value)
        if image_id is None:
            missing.append(value)
            continue
        if image_id in first_number:
            first = first_number[image_id]
            raise table.error(number, f"image '{image_id}' is listed twice (first: {first})")
        first_number[image_id] = number
        extra = {
            key: cell
            for key, cell in row.items()
            if key not in (image_column, score_column, "id", "image", "subject", "mos")
        }
        records[image_id] = {
            "id": image_id,
            "image": _reference(locator.root / image_id, out),
            "subject": None,
            "mos": score,
            **extra,
        }
    if missing:
        raise UserError(
            f"{len(missing)} of {len(table.rows)} image(s) not found under {locator.root}: "
            f"{examples_text(missing)}",
            path=table.path,
        )
    ordered = [records[image_id] for image_id in sorted(records)]
    return ordered, {record["id"]: record["mos"] for record in ordered}


def _image_value(cell: Any, table: _LabelTable, number: int) -> str:
    value = str(cell if cell is not None else "").strip().replace("\\", "/").removeprefix("./")
    problem = image_id_problem(value)
    if problem is not None:
        raise table.error(number, problem)
    return value


def _score_value(cell: Any, table: _LabelTable, number: int) -> float:
    try:
        score = float(cell)
    except (TypeError, ValueError):
        score = float("nan")
    if not np.isfinite(score):
        raise table.error(number, f"the score must be a finite number, not '{cell}'")
    return score


def _write_mos_csv(path: Path, mos: Mapping[str, float]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["image", "mos"])
        writer.writerows((image, repr(score)) for image, score in mos.items())


# ---------------------------------------------------------------------------------------------
# Shared


def _scored(
    comparisons: Comparisons,
    image_root: Path,
    recognizers: Sequence[FaceRecognizer],
    progress: Progress | None,
) -> tuple[Comparisons, dict[str, dict[str, Any]]]:
    """`comparisons` with one similarity column per recognizer, and the per-model stats."""
    if not recognizers:
        return comparisons, {}
    result = biometrics.compute_similarities(
        comparisons, image_root, recognizers, progress=progress
    )
    for model, values in result.values.items():
        comparisons = comparisons.with_similarity(model, values)
    return comparisons, {model: asdict(stats) for model, stats in result.stats.items()}


def _comparison_counts(comparisons: Comparisons) -> dict[str, int]:
    mated = int(comparisons.mated.sum())
    return {"comparisons": len(comparisons), "mated": mated, "non_mated": len(comparisons) - mated}


def _reference(path: Path, out: Path) -> str:
    """`path` relative to the output folder, or absolute where no relative path exists."""
    try:
        return Path(os.path.relpath(path.resolve(), out.resolve())).as_posix()
    except ValueError:  # another drive on Windows
        return path.resolve().as_posix()


def _manifest(
    dataset: str,
    source: Path,
    image_root: Path,
    out: Path,
    *,
    similarity: dict[str, dict[str, Any]],
) -> Manifest:
    return {
        "format": FORMAT,
        "dataset": dataset,
        "fiqabench_version": __version__,
        "source": str(source.resolve()),
        "image_root": str(image_root.resolve()),
        "image_root_relative": _reference(image_root, out),
        "images_referenced": "in place: 'image' is relative to this folder, 'id' to image_root",
        "files": {"images": IMAGES_FILE},
        "similarity": similarity,
        "notes": [],
    }


def _write_outputs(
    out: Path,
    records: Iterable[ImageRecord],
    manifest: Manifest,
    *,
    comparisons: Comparisons | None,
) -> Manifest:
    out.mkdir(parents=True, exist_ok=True)
    with (out / IMAGES_FILE).open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    if comparisons is not None:
        write_comparisons_csv(out / COMPARISONS_FILE, comparisons)
        manifest["files"]["comparisons"] = COMPARISONS_FILE
    manifest["files"]["manifest"] = MANIFEST_FILE
    text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    (out / MANIFEST_FILE).write_text(text, encoding="utf-8")
    return manifest
