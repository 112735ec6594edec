"""Pack a run folder into a submission bundle, refusing one that validation would reject."""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import fiqabench
from fiqabench.benchmark.results import RESULTS_FILE, SAMPLES_FILE, read_results, read_samples
from fiqabench.errors import UserError
from fiqabench.leaderboard.bundle_read import (
    DEFAULT_LIMITS,
    MANIFEST_MEMBER,
    BundleLimits,
    BundleManifest,
    BundleMember,
    sha256_hex,
)
from fiqabench.leaderboard.bundle_thumbs import collect_thumbnails
from fiqabench.leaderboard.validate import validate_bundle
from fiqabench.tasks.registry import TaskRegistry

# Fixed timestamps and permissions: the same members make the same zip entries.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_FILE_MODE = 0o644 << 16


def default_bundle_path(run_dir: Path) -> Path:
    """`runs/NAME` → `runs/NAME.zip`, beside the run folder (NAME may hold dots)."""
    folder = run_dir.resolve()
    return folder.parent / f"{folder.name}.zip"


def pack_bundle(
    run_dir: Path,
    out: Path | None = None,
    *,
    include_paths: Sequence[Path] = (),
    limits: BundleLimits = DEFAULT_LIMITS,
) -> Path:
    """Write `run_dir`'s results, samples and thumbnails as one bundle; returns its path.

    Tasks (for thumbnails and for the validation every new bundle passes) come from the
    run's own include paths plus `include_paths`. Raises UserError, writing nothing, when the
    run would not make a valid bundle.
    """
    out = out if out is not None else default_bundle_path(run_dir)
    if out.suffix != ".zip":
        raise UserError("a bundle's file name must end in .zip", path=out)
    if out.is_dir():
        raise UserError("is a folder; give the bundle's file name", path=out)
    results = read_results(run_dir)
    records = read_samples(run_dir)
    folders = [Path(p) for p in results.manifest.include_paths if Path(p).is_dir()]
    registry = TaskRegistry(list(dict.fromkeys([*folders, *include_paths])))
    thumbnails = collect_thumbnails(registry, records, limits.max_thumbnails)
    members = {
        RESULTS_FILE: (run_dir / RESULTS_FILE).read_bytes(),
        SAMPLES_FILE: (run_dir / SAMPLES_FILE).read_bytes(),
    }
    thumbnail_map = {}
    for key, jpeg in thumbnails.items():
        name = f"thumbs/{sha256_hex(jpeg)}.jpg"
        members[name] = jpeg
        thumbnail_map[key] = name
    manifest = BundleManifest(
        fiqabench_version=fiqabench.__version__,
        created_at=datetime.now(UTC).replace(microsecond=0),
        members=[
            BundleMember(path=name, size=len(data), sha256=sha256_hex(data))
            for name, data in members.items()
        ],
        thumbnails=thumbnail_map,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    # Built and validated under its final name in a private folder beside `out`, then moved
    # into place in one step: a refused or interrupted pack leaves no partial bundle.
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".fiqabench-pack-") as folder:
        draft = Path(folder) / out.name
        _write_zip(draft, manifest, members)
        report = validate_bundle(draft, registry=registry, limits=limits)
        if not report.ok:
            summary = report.summary().replace(str(draft), str(out))
            raise UserError(f"this run does not make a valid bundle: {summary}", path=run_dir)
        os.replace(draft, out)
    return out


def _write_zip(path: Path, manifest: BundleManifest, members: dict[str, bytes]) -> None:
    document = manifest.model_dump(mode="json")
    entries = {MANIFEST_MEMBER: json.dumps(document, indent=2).encode() + b"\n", **members}
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.external_attr = _FILE_MODE
            # JPEGs do not deflate; storing them keeps their ratio honest and packing quick.
            info.compress_type = (
                zipfile.ZIP_STORED if name.endswith(".jpg") else zipfile.ZIP_DEFLATED
            )
            archive.writestr(info, data)
