"""Biometric comparisons between two images: who is compared with whom, and how similar they are.

A comparison names two images by id, says whether they show the same person (`mated`) and
carries one similarity score per face recognition model. Image ids are POSIX paths relative to
a base folder (the dataset's image root), such as ``Aaron_Peirsol/Aaron_Peirsol_0001.jpg``.

Files read and written here:

- comparisons CSV: header ``a,b,mated`` then either one ``similarity`` column (read as model
  ``default``) or any number of ``similarity_<model>`` columns; `mated` is 1/0, true/false or
  yes/no. Other columns are ignored. Writing always uses ``similarity_<model>`` and 1/0.
- LFW ``pairs.txt`` (protocols.md section 4).
- an embedding folder: one ``.npy`` vector per image, at ``<folder>/<image id>.npy`` (the id's
  folders kept as subfolders: ``Aaron/Aaron_0001.jpg`` -> ``Aaron/Aaron_0001.jpg.npy``).

Nothing here needs OpenCV; face detection and embedding live in `biometrics`.
"""

from __future__ import annotations

import contextlib
import csv
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TextIO

import numpy as np
from numpy.typing import NDArray

from fiqabench.errors import UserError

FloatArray = NDArray[np.float64]
Embedding = NDArray[np.floating]

UNNAMED_MODEL = "default"
"""Model name given to the scores of a plain ``similarity`` column."""
SIMILARITY_PREFIX = "similarity_"
EXAMPLES_SHOWN = 5

_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")
_TRUE = frozenset({"1", "true", "yes"})
_FALSE = frozenset({"0", "false", "no"})
_REQUIRED_COLUMNS = ("a", "b", "mated")


@dataclass(frozen=True)
class Comparison:
    """One comparison: two image ids, whether they show the same person, scores per model."""

    a: str
    b: str
    mated: bool
    similarity: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)  # `==` on numpy columns has no single truth value
class Comparisons:
    """Comparisons as columns: `a[i]` vs `b[i]`, `mated[i]`, `similarity[model][i]`.

    Build with `Comparisons.build` (converts lists) or `from_records`; the constructor only
    checks that the columns have one entry per comparison. Compare contents with `list(...)`.
    """

    a: NDArray[np.str_]
    b: NDArray[np.str_]
    mated: NDArray[np.bool_]
    similarity: dict[str, FloatArray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        size = len(self.a)
        columns = {"b": self.b, "mated": self.mated, **self.similarity}
        for name, column in columns.items():
            if column.ndim != 1 or len(column) != size:
                raise ValueError(f"column '{name}' has shape {column.shape}, expected ({size},)")
        for model in self.similarity:
            check_model_name(model)

    @classmethod
    def build(
        cls,
        a: Sequence[str],
        b: Sequence[str],
        mated: Sequence[bool],
        similarity: Mapping[str, Sequence[float] | FloatArray] | None = None,
    ) -> Comparisons:
        """Comparisons from plain sequences (one entry per comparison in each)."""
        scores = {
            model: np.asarray(values, dtype=np.float64)
            for model, values in (similarity or {}).items()
        }
        return cls(
            a=np.asarray(a, dtype=np.str_),
            b=np.asarray(b, dtype=np.str_),
            mated=np.asarray(mated, dtype=np.bool_),
            similarity=scores,
        )

    @classmethod
    def from_records(cls, records: Iterable[Comparison]) -> Comparisons:
        """Columns from records; every record must carry scores for the same models."""
        rows = list(records)
        models = list(rows[0].similarity) if rows else []
        for row in rows:
            if set(row.similarity) != set(models):
                raise ValueError(
                    f"comparison {row.a} vs {row.b} has scores for {sorted(row.similarity)}, "
                    f"the first one for {sorted(models)}"
                )
        return cls.build(
            [row.a for row in rows],
            [row.b for row in rows],
            [row.mated for row in rows],
            {model: [row.similarity[model] for row in rows] for model in models},
        )

    def __len__(self) -> int:
        return len(self.a)

    def __getitem__(self, index: int) -> Comparison:
        scores = {model: float(values[index]) for model, values in self.similarity.items()}
        return Comparison(str(self.a[index]), str(self.b[index]), bool(self.mated[index]), scores)

    def __iter__(self) -> Iterator[Comparison]:
        return (self[index] for index in range(len(self)))

    def image_ids(self) -> list[str]:
        """Every image id used, once, in order of first appearance."""
        pairs = zip(self.a.tolist(), self.b.tolist(), strict=True)
        return list(dict.fromkeys(image for pair in pairs for image in pair))

    def take(self, indices: Sequence[int] | NDArray[np.integer]) -> Comparisons:
        """The comparisons at `indices`, in that order."""
        chosen = np.asarray(indices, dtype=np.intp)
        scores = {model: values[chosen] for model, values in self.similarity.items()}
        return Comparisons(self.a[chosen], self.b[chosen], self.mated[chosen], scores)

    def with_similarity(self, model: str, values: Sequence[float] | FloatArray) -> Comparisons:
        """A copy with the scores of `model` added (or replaced)."""
        scores = {**self.similarity, model: np.asarray(values, dtype=np.float64)}
        return Comparisons(self.a, self.b, self.mated, scores)


def check_model_name(model: str) -> None:
    """Raise ValueError unless `model` can be the suffix of a ``similarity_<model>`` column."""
    if not _MODEL_NAME.fullmatch(model):
        raise ValueError(
            f"model name {model!r} must start with a letter or digit and use only letters, "
            "digits and _ . + -"
        )


def image_id_problem(image_id: str) -> str | None:
    """Why `image_id` is not a relative POSIX path inside its base folder, or None if it is."""
    if not image_id:
        return "empty image id"
    if "\\" in image_id:
        return f"image id '{image_id}' must use '/' between folders"
    path = PurePosixPath(image_id)
    if path.is_absolute() or ".." in path.parts or "" in image_id.split("/"):
        return f"image id '{image_id}' must be a relative path inside the image folder"
    return None


# ---------------------------------------------------------------------------------------------
# Comparisons CSV


def read_comparisons_csv(path: Path) -> Comparisons:
    """Read a comparisons CSV (see the module docstring); errors name the file and the line."""
    with _open_text(path) as handle:
        reader = csv.reader(handle)
        header = _read_header(reader, path)
        columns = _column_layout(header, path)
        rows = [_parse_row(cells, columns, path, reader.line_num) for cells in reader if cells]
    _check_distinct_pairs(rows, path)
    return Comparisons.from_records(row for row, _ in rows)


def write_comparisons_csv(path: Path, comparisons: Comparisons) -> None:
    """Write `comparisons` as CSV: ``a,b,mated,similarity_<model>...``, mated as 1/0.

    Scores are written with Python's shortest round-trip float format, so reading the file
    back gives the same numbers.
    """
    models = list(comparisons.similarity)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow([*_REQUIRED_COLUMNS, *(SIMILARITY_PREFIX + model for model in models)])
        mated = np.where(comparisons.mated, "1", "0").tolist()
        scores = [
            [repr(value) for value in comparisons.similarity[model].tolist()] for model in models
        ]
        writer.writerows(
            zip(comparisons.a.tolist(), comparisons.b.tolist(), mated, *scores, strict=True)
        )


@dataclass(frozen=True)
class _Columns:
    a: int
    b: int
    mated: int
    similarity: dict[str, int]  # model -> column index
    width: int


@contextlib.contextmanager
def _open_text(path: Path) -> Iterator[TextIO]:
    """Open a text file for reading; OS errors become a UserError naming the file."""
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except FileNotFoundError:
        raise UserError("file not found", path=path) from None
    except OSError as exc:
        raise UserError(f"cannot read file: {exc.strerror or exc}", path=path) from None
    with handle:
        yield handle


def _read_header(reader: Iterator[list[str]], path: Path) -> list[str]:
    for cells in reader:
        if cells:
            return [cell.strip() for cell in cells]
    raise UserError("empty file: expected a header 'a,b,mated[,similarity...]'", path=path)


def _column_layout(header: list[str], path: Path) -> _Columns:
    lowered = [name.lower() for name in header]
    missing = [name for name in _REQUIRED_COLUMNS if name not in lowered]
    if missing:
        raise UserError(
            f"missing column(s) {', '.join(missing)}; the header must start with a,b,mated "
            f"(found: {','.join(header)})",
            path=path,
            line=1,
        )
    duplicated = sorted({name for name in lowered if lowered.count(name) > 1})
    if duplicated:
        raise UserError(f"duplicate column(s) {', '.join(duplicated)}", path=path, line=1)
    return _Columns(
        a=lowered.index("a"),
        b=lowered.index("b"),
        mated=lowered.index("mated"),
        similarity=_similarity_columns(header, path),
        width=len(header),
    )


def _similarity_columns(header: list[str], path: Path) -> dict[str, int]:
    models: dict[str, int] = {}
    for index, name in enumerate(header):
        if name.lower() == "similarity":
            model = UNNAMED_MODEL
        elif name.lower().startswith(SIMILARITY_PREFIX):
            model = name[len(SIMILARITY_PREFIX) :]
        else:
            continue
        try:
            check_model_name(model)
        except ValueError as exc:
            raise UserError(f"column '{name}': {exc}", path=path, line=1) from None
        if model in models:
            raise UserError(f"two similarity columns for model '{model}'", path=path, line=1)
        models[model] = index
    return models


def _parse_row(
    cells: list[str], columns: _Columns, path: Path, line: int
) -> tuple[Comparison, int]:
    if len(cells) != columns.width:
        raise UserError(
            f"expected {columns.width} values (as in the header), found {len(cells)}",
            path=path,
            line=line,
        )
    a, b = cells[columns.a].strip(), cells[columns.b].strip()
    for image_id in (a, b):
        problem = image_id_problem(image_id)
        if problem is not None:
            raise UserError(problem, path=path, line=line)
    if a == b:
        raise UserError(f"an image compared with itself ('{a}')", path=path, line=line)
    mated = _parse_bool(cells[columns.mated], path, line)
    scores = {
        model: _parse_score(cells[index], model, path, line)
        for model, index in columns.similarity.items()
    }
    return Comparison(a, b, mated, scores), line


def _parse_bool(text: str, path: Path, line: int) -> bool:
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise UserError(
        f"mated must be 1/0, true/false or yes/no, not '{text.strip()}'", path=path, line=line
    )


def _parse_score(text: str, model: str, path: Path, line: int) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not np.isfinite(value):
        raise UserError(
            f"similarity for '{model}' must be a finite number, not '{text.strip()}'",
            path=path,
            line=line,
        )
    return value


def _check_distinct_pairs(rows: list[tuple[Comparison, int]], path: Path) -> None:
    """A pair may appear once, in either order: a repeated pair would count twice in error rates."""
    first_line: dict[frozenset[str], int] = {}
    for row, line in rows:
        key = frozenset((row.a, row.b))
        if key in first_line:
            raise UserError(
                f"duplicate comparison {row.a} vs {row.b} (first on line {first_line[key]})",
                path=path,
                line=line,
            )
        first_line[key] = line


# ---------------------------------------------------------------------------------------------
# LFW pairs.txt


def lfw_image_id(name: str, number: int) -> str:
    """The LFW file of a person's n-th image: ``name/name_%04d.jpg``."""
    return f"{name}/{name}_{number:04d}.jpg"


def read_lfw_pairs(path: Path, image_root: Path | None = None) -> Comparisons:
    """Read an LFW ``pairs.txt``: ids are ``name/name_%04d.jpg``, relative to the image root.

    The header is ``<folds> <pairs per fold>`` (``10 300`` for View 2); pairsDevTrain/DevTest's
    one-number header (``1100``, ``500``) means one fold. Each fold holds that many matched lines
    ``name i j`` and then as many mismatched lines ``name1 i name2 j`` (tab or space separated).
    Blank lines are skipped. When `image_root` is given, every image must exist under it.
    Errors name the file and the line.
    """
    with _open_text(path) as handle:
        lines = [(number, text.split()) for number, text in enumerate(handle, start=1)]
    lines = [(number, tokens) for number, tokens in lines if tokens]
    if not lines:
        raise UserError("empty file: expected a header such as '10 300'", path=path)
    folds, per_fold = _lfw_header(lines[0], path)
    body = lines[1:]
    expected = folds * per_fold * 2
    if len(body) != expected:
        where = body[expected][0] if len(body) > expected else None
        raise UserError(
            f"the header promises {folds} fold(s) of {per_fold} matched and {per_fold} "
            f"mismatched pairs ({expected} lines), found {len(body)} pair lines",
            path=path,
            line=where,
        )
    records = [
        _lfw_pair(tokens, matched=(index // per_fold) % 2 == 0, path=path, line=number)
        for index, (number, tokens) in enumerate(body)
    ]
    _check_distinct_pairs(list(zip(records, (number for number, _ in body), strict=True)), path)
    comparisons = Comparisons.from_records(records)
    if image_root is not None:
        check_images_exist(image_root, comparisons.image_ids(), source=path)
    return comparisons


def _lfw_header(line: tuple[int, list[str]], path: Path) -> tuple[int, int]:
    number, tokens = line
    values = [int(token) for token in tokens if token.isdigit()]
    if len(values) != len(tokens) or len(values) not in (1, 2) or min(values) < 1:
        raise UserError(
            f"expected a header '<folds> <pairs per fold>' such as '10 300', found "
            f"'{' '.join(tokens)}'",
            path=path,
            line=number,
        )
    return (1, values[0]) if len(values) == 1 else (values[0], values[1])


def _lfw_pair(tokens: list[str], *, matched: bool, path: Path, line: int) -> Comparison:
    if matched and len(tokens) == 3:
        name, first, second = tokens
        people, numbers = (name, name), (first, second)
    elif not matched and len(tokens) == 4:
        people, numbers = (tokens[0], tokens[2]), (tokens[1], tokens[3])
    else:
        expected = "a matched pair 'name i j'" if matched else "a mismatched pair 'name1 i name2 j'"
        raise UserError(f"expected {expected}, found '{' '.join(tokens)}'", path=path, line=line)
    a, b = (
        lfw_image_id(_lfw_name(person, path, line), _lfw_number(number, path, line))
        for person, number in zip(people, numbers, strict=True)
    )
    if a == b:
        raise UserError(f"an image compared with itself ('{a}')", path=path, line=line)
    if not matched and people[0] == people[1]:
        raise UserError(f"a mismatched pair of one person ('{people[0]}')", path=path, line=line)
    return Comparison(a, b, matched)


def _lfw_name(name: str, path: Path, line: int) -> str:
    if "/" in name or "\\" in name or name in (".", ".."):
        raise UserError(f"'{name}' is not a person's name", path=path, line=line)
    return name


def _lfw_number(token: str, path: Path, line: int) -> int:
    if not token.isdigit() or int(token) < 1:
        raise UserError(
            f"image number must be a positive integer, not '{token}'", path=path, line=line
        )
    return int(token)


def check_images_exist(image_root: Path, image_ids: Iterable[str], *, source: Path) -> None:
    """Raise a UserError (naming `source`) listing how many images are missing and which."""
    missing = [image for image in image_ids if not (image_root / image).is_file()]
    if missing:
        raise UserError(
            f"{len(missing)} image(s) not found under {image_root}: {examples_text(missing)}",
            path=source,
        )


def examples_text(values: Sequence[str]) -> str:
    """The first few values, comma-separated, and how many more there are."""
    shown = ", ".join(values[:EXAMPLES_SHOWN])
    return shown + (
        f", ... ({len(values) - EXAMPLES_SHOWN} more)" if len(values) > EXAMPLES_SHOWN else ""
    )


# ---------------------------------------------------------------------------------------------
# Embeddings


def cosine_similarities(first: FloatArray, second: FloatArray) -> FloatArray:
    """Row-wise cosine similarity of two (n, d) arrays; a zero vector raises ValueError."""
    first_norm = np.linalg.norm(first, axis=1)
    second_norm = np.linalg.norm(second, axis=1)
    if not (np.all(first_norm > 0) and np.all(second_norm > 0)):
        raise ValueError("cosine similarity of a zero vector is undefined")
    result: FloatArray = np.einsum("ij,ij->i", first, second) / (first_norm * second_norm)
    return np.clip(result, -1.0, 1.0)  # rounding can step just outside [-1, 1]


def similarities_from_embeddings(
    comparisons: Comparisons, embeddings: Mapping[str, Embedding]
) -> FloatArray:
    """Cosine similarity of every comparison's two embeddings (float64, one per comparison).

    Every image must have an embedding, all of one dimension; otherwise a UserError says how
    many are missing and names the first few.
    """
    image_ids = comparisons.image_ids()
    missing = [image for image in image_ids if image not in embeddings]
    if missing:
        count = f"{len(missing)} of {len(image_ids)}"
        raise UserError(f"no embedding for {count} image(s): {examples_text(missing)}")
    if not image_ids:
        return np.zeros(0, dtype=np.float64)
    matrix = _stacked(image_ids, embeddings)
    row = {image: index for index, image in enumerate(image_ids)}
    first = np.fromiter((row[str(image)] for image in comparisons.a), dtype=np.intp)
    second = np.fromiter((row[str(image)] for image in comparisons.b), dtype=np.intp)
    return cosine_similarities(matrix[first], matrix[second])


def _stacked(image_ids: list[str], embeddings: Mapping[str, Embedding]) -> FloatArray:
    vectors = [np.asarray(embeddings[image], dtype=np.float64).ravel() for image in image_ids]
    sizes = {vector.size for vector in vectors}
    if len(sizes) > 1:
        raise UserError(f"embeddings of different sizes: {sorted(sizes)}")
    matrix = np.stack(vectors)
    norms = np.linalg.norm(matrix, axis=1)
    zero = [image for image, norm in zip(image_ids, norms, strict=True) if norm == 0]
    if zero:
        raise UserError(f"{len(zero)} embedding(s) are all zeros: {examples_text(zero)}")
    return matrix


def embedding_path(folder: Path, image_id: str) -> Path:
    """Where the embedding of `image_id` is stored: ``<folder>/<image id>.npy``."""
    problem = image_id_problem(image_id)
    if problem is not None:
        raise ValueError(problem)
    return folder / f"{image_id}.npy"


def save_embedding_dir(folder: Path, embeddings: Mapping[str, Embedding]) -> None:
    """Write one ``.npy`` vector per image id (see `embedding_path`)."""
    for image_id, vector in embeddings.items():
        path = embedding_path(folder, image_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, np.asarray(vector).ravel(), allow_pickle=False)


def load_embedding_dir(folder: Path) -> dict[str, FloatArray]:
    """Read every ``.npy`` file under `folder` as the embedding of the image id it is named for.

    ``<folder>/Aaron/Aaron_0001.jpg.npy`` holds the vector of image ``Aaron/Aaron_0001.jpg``.
    A file must hold one numeric vector (shape (d,) or (1, d)); errors name the file.
    """
    if not folder.is_dir():
        raise UserError("not a folder", path=folder)
    files = sorted(folder.rglob("*.npy"))
    if not files:
        raise UserError("no .npy embedding files in this folder", path=folder)
    return {
        file.relative_to(folder).as_posix().removesuffix(".npy"): _load_vector(file)
        for file in files
    }


def _load_vector(path: Path) -> FloatArray:
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read the embedding: {exc}", path=path) from None
    if not isinstance(array, np.ndarray) or not np.issubdtype(array.dtype, np.number):
        raise UserError("expected a numeric array", path=path)
    if array.ndim == 2 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 1 or array.size == 0 or not np.all(np.isfinite(array)):
        raise UserError(f"expected one finite vector, found shape {array.shape}", path=path)
    vector: FloatArray = array.astype(np.float64)
    return vector
