"""Thumbnails of the sample browser: one file per content hash; made from local data if need be."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from fiqabench.benchmark.results import RunManifest
from fiqabench.benchmark.schema import Record
from fiqabench.errors import UserError
from fiqabench.leaderboard.bundle_thumbs import make_thumbnail, thumbnail_key
from fiqabench.leaderboard.site_tasks import LocalTasks

JPEG_MAGIC = b"\xff\xd8\xff"


class ThumbnailWriter:
    """Writes `thumbs/<sha256>.jpg` under the site root, each distinct content once."""

    def __init__(self, root: Path):
        self.root = root
        self.names: set[str] = set()
        self.rejected = 0
        # The same bytes object is shared by submissions built from one source; hashing it
        # once per object keeps a 50-model build from re-hashing identical thumbnails.
        self._by_object: dict[int, tuple[bytes, str | None]] = {}

    def add(self, data: bytes) -> str | None:
        """The thumbnail's path from the site root, or None for bytes that are not a JPEG."""
        known = self._by_object.get(id(data))
        if known is not None and known[0] is data:
            return known[1]
        name: str | None = None
        if data.startswith(JPEG_MAGIC):
            name = f"thumbs/{hashlib.sha256(data).hexdigest()}.jpg"
            if name not in self.names:
                path = self.root / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
                self.names.add(name)
        else:
            self.rejected += 1
        self._by_object[id(data)] = (data, name)
        return name


class LocalThumbnails:
    """Thumbnails for run folders, which carry none: made from the task's images on this machine,
    encoded as bundles encode theirs, each image once however many folders share it."""

    def __init__(self, tasks: LocalTasks):
        self.tasks = tasks
        self._by_path: dict[Path, bytes | None] = {}

    def for_records(self, records: Iterable[Record], manifest: RunManifest) -> dict[str, bytes]:
        thumbnails: dict[str, bytes] = {}
        for record in records:
            samples = self.tasks.samples(record.task, manifest)
            sample = samples.get(record.sample_id) if samples else None
            if sample is None or not sample.images:
                continue
            data = self._thumbnail(sample.images[0])
            if data is not None:
                thumbnails[thumbnail_key(record.task, record.sample_id)] = data
        return thumbnails

    def _thumbnail(self, path: Path) -> bytes | None:
        if path not in self._by_path:
            try:
                self._by_path[path] = make_thumbnail(path)
            except UserError:
                self._by_path[path] = None  # a bad image: the row shows no thumbnail
        return self._by_path[path]
