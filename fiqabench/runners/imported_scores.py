"""Imported scores: evaluate quality scores computed elsewhere, read from an `image,score` CSV.

An entry's image is a path relative to any folder (``subject1/001.jpg``) or a bare file name
(``001.jpg``). A request's image takes the entry whose path is the longest trailing part of its
own path; failing that, the one entry with the same file name (several: an error naming them).
Scores keep their own scale (any real number): only rankings and correlations use them.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from fiqabench.benchmark.schema import Request, Response
from fiqabench.errors import UserError
from fiqabench.runners.base import ModelIdentity

RUNNER_NAME = "scores"
HEADER = ["image", "score"]


class NoScore(LookupError):
    """An image without exactly one imported score; the message says which and why."""


@dataclass(frozen=True)
class ScoreTable:
    """Scores by normalised image path, and the paths that share each file name."""

    by_path: dict[str, float]
    by_name: dict[str, list[str]]

    @classmethod
    def of(cls, scores: dict[str, float]) -> ScoreTable:
        by_name: dict[str, list[str]] = {}
        for image in scores:
            by_name.setdefault(image.rsplit("/", 1)[-1], []).append(image)
        return cls(scores, by_name)

    def lookup(self, image_path: str) -> float:
        """The score of the entry matching `image_path`; NoScore when none or several match."""
        parts = _parts(image_path)
        for start in range(len(parts)):
            suffix = "/".join(parts[start:])
            if suffix in self.by_path:
                return self.by_path[suffix]
        name = parts[-1] if parts else image_path
        candidates = self.by_name.get(name, [])
        if len(candidates) > 1:
            raise NoScore(f"'{name}' is ambiguous in the scores file: {', '.join(candidates)}")
        if not candidates:
            raise NoScore(f"no imported score for {name}")
        return self.by_path[candidates[0]]


def _parts(path: str) -> tuple[str, ...]:
    """Path components, either slash accepted, without the root and '.'."""
    pure = PurePosixPath(path.strip().replace("\\", "/"))
    return tuple(part for part in pure.parts if part not in ("/", "."))


def read_scores(path: Path) -> ScoreTable:
    return parse_scores(_read_bytes(path), path)


def parse_scores(data: bytes, path: Path) -> ScoreTable:
    """Parse the CSV bytes; a UserError names the file and line of every problem."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(f"scores file is not UTF-8 text: {exc.reason}", path=path) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [name.strip().lower() for name in next(reader, [])]
    if header != HEADER:
        raise UserError("the first line must be the header 'image,score'", path=path, line=1)
    scores: dict[str, float] = {}
    line_of: dict[str, int] = {}
    for row in reader:
        if not any(field.strip() for field in row):
            continue  # blank line
        image, score = _parse_row(row, path, reader.line_num)
        if image in scores:
            raise UserError(
                f"'{image}' is listed twice (also on line {line_of[image]})",
                path=path,
                line=reader.line_num,
            )
        scores[image], line_of[image] = score, reader.line_num
    if not scores:
        raise UserError("the scores file has a header but no scores", path=path)
    return ScoreTable.of(scores)


def _parse_row(row: list[str], path: Path, line: int) -> tuple[str, float]:
    if len(row) != len(HEADER):
        raise UserError(f"expected 2 fields (image,score), found {len(row)}", path=path, line=line)
    parts = _parts(row[0])
    if not parts:
        raise UserError("the image field is empty", path=path, line=line)
    text = row[1].strip()
    try:
        score = float(text)
    except ValueError:
        raise UserError(f"score '{text}' is not a number", path=path, line=line) from None
    if not math.isfinite(score):
        raise UserError(f"score '{text}' is not a finite number", path=path, line=line)
    return "/".join(parts), score


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise UserError("scores file not found", path=path) from None
    except IsADirectoryError:
        raise UserError("is a directory, not a scores file", path=path) from None
    except OSError as exc:
        raise UserError(f"cannot read scores file: {exc.strerror or exc}", path=path) from None


class ImportedScoresRunner:
    """Answers every request with the imported score of its (first) image."""

    def __init__(
        self, identity: ModelIdentity, path: Path | str, *, table: ScoreTable | None = None
    ):
        self.identity = identity
        self.path = Path(path)
        self.table = table if table is not None else read_scores(self.path)

    def respond(self, request: Request) -> Response:
        if not request.images:
            return Response(error="the request has no image to look up")
        try:
            score = self.table.lookup(request.images[0].path)
        except NoScore as exc:
            return Response(error=str(exc))
        return Response(text=str(score), score=score)

    def generate(self, requests: Sequence[Request]) -> Iterator[tuple[Request, Response]]:
        for request in requests:
            yield request, self.respond(request)

    def close(self) -> None:
        return None


def adhoc_runner(alias: str, csv_path: str) -> ImportedScoresRunner:
    """The runner for the ad-hoc model form `scores:<path.csv>`, named `alias`.

    Its revision is the sha256 of the file's bytes, so an edited file never reuses stored
    answers; the bytes are read once, so the hash always describes the scores in use.
    """
    if not csv_path.strip():
        raise UserError(f"model '{alias}' names no CSV file (write e.g. scores:my_scores.csv)")
    path = Path(csv_path.strip()).expanduser()
    data = _read_bytes(path)
    identity = ModelIdentity(
        alias=alias,
        runner=RUNNER_NAME,
        model_id=str(path.resolve()),
        revision=hashlib.sha256(data).hexdigest(),
    )
    return ImportedScoresRunner(identity, path, table=parse_scores(data, path))
