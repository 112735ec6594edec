"""What `leaderboard build --submissions DIR` reads: `*.zip` bundles and run folders in DIR.

Bundles (made by `fiqabench submit pack`) are read and validated by the bundle module. A run
folder (any direct subfolder holding results.json and samples.jsonl) is taken as it is, for
previewing a leaderboard of local runs: it is named after the folder, is not re-scored, and
gets thumbnails from the task images on this machine when the task is known here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fiqabench.benchmark.results import RESULTS_FILE, SAMPLES_FILE, read_results, read_samples
from fiqabench.errors import UserError
from fiqabench.leaderboard.bundle import load_submissions
from fiqabench.leaderboard.bundle_thumbs import LocalThumbnails
from fiqabench.leaderboard.submission import Submission


def is_run_folder(path: Path) -> bool:
    return path.is_dir() and (path / RESULTS_FILE).is_file()


def load_run_folder(folder: Path, thumbnails: LocalThumbnails | None = None) -> Submission:
    """A run folder as a submission named after the folder."""
    if not (folder / SAMPLES_FILE).is_file():
        raise UserError(f"a run folder needs {SAMPLES_FILE} beside {RESULTS_FILE}", path=folder)
    results = read_results(folder)
    records = read_samples(folder)
    thumbs = thumbnails.for_records(records, results.manifest) if thumbnails else {}
    return Submission(name=folder.name, results=results, records=records, thumbnails=thumbs)


def load_folder(
    folder: Path,
    thumbnails: LocalThumbnails | None = None,
    include_paths: Sequence[Path] = (),
) -> list[Submission]:
    """Every bundle and run folder directly in `folder`, bundles first, each sorted by name.

    Bundles are validated (re-scored) against the tasks here, `include_paths` included.
    """
    if not folder.is_dir():
        raise UserError(
            "--submissions must be a folder of *.zip bundles or run folders", path=folder
        )
    submissions: list[Submission] = []
    if any(path.is_file() for path in folder.glob("*.zip")):
        submissions.extend(load_submissions(folder, include_paths=include_paths))
    runs = sorted(path for path in folder.iterdir() if is_run_folder(path))
    submissions.extend(load_run_folder(run, thumbnails) for run in runs)
    if not submissions:
        raise UserError(
            "no submissions here: expected *.zip bundles (fiqabench submit pack) "
            f"or run folders holding {RESULTS_FILE} and {SAMPLES_FILE}",
            path=folder,
        )
    seen: dict[str, str] = {}
    for submission in submissions:
        # Case aside, as bundle names are compared: names become page names.
        key = submission.name.casefold()
        if key in seen:
            raise UserError(
                f"two submissions are named {seen[key]!r} and {submission.name!r} "
                "(a bundle and a run folder?); rename one",
                path=folder,
            )
        seen[key] = submission.name
    return submissions
