"""Thumbnails of samples: made from the task images on this machine, checked and re-encoded on read.

The leaderboard site shows each sample beside a small picture of its (first) image. Bundles
carry these so that the site needs neither the datasets nor paths into them; run folders carry
none, so the site makes theirs here, the same way `submit pack` does. The task samples read for
this (LocalTasks) also give the site its question texts.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from fiqabench.benchmark.images import load_rgb
from fiqabench.benchmark.results import RunManifest
from fiqabench.benchmark.schema import Record
from fiqabench.errors import UserError
from fiqabench.tasks.base import Sample
from fiqabench.tasks.registry import TaskRegistry

THUMB_MAX_SIDE = 160
THUMB_QUALITY = 80
_JPEG_MAGIC = b"\xff\xd8\xff"
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError)


def thumbnail_key(task: str, sample_id: str) -> str:
    # Task names hold no "/", so the first one separates the parts again.
    return f"{task}/{sample_id}"


def _encode(image: Image.Image) -> bytes:
    # A fresh image from the pixels alone: Pillow would otherwise write the source's comment,
    # EXIF and ICC segments back out.
    bare = Image.frombytes("RGB", image.size, image.convert("RGB").tobytes())
    buffer = io.BytesIO()
    bare.save(buffer, format="JPEG", quality=THUMB_QUALITY, optimize=True)
    return buffer.getvalue()


def make_thumbnail(path: Path) -> bytes:
    """A JPEG of the image, upright RGB, shrunk so that neither side exceeds THUMB_MAX_SIDE.

    Raises ImageError (a UserError) naming the file when it cannot be used.
    """
    image = load_rgb(path)
    image.thumbnail((THUMB_MAX_SIDE, THUMB_MAX_SIDE), Image.Resampling.LANCZOS)
    return _encode(image)


def clean_thumbnail(data: bytes) -> bytes:
    """Decode a bundle's thumbnail and encode its pixels again, dropping any metadata.

    Raises ValueError when the bytes are not a small, complete JPEG. Re-encoding means that
    whatever a submitter hid in JPEG segments (comments, EXIF, ICC) never reaches the site.
    """
    if not data.startswith(_JPEG_MAGIC):
        raise ValueError("not a JPEG file")
    try:
        image = Image.open(io.BytesIO(data), formats=["JPEG"])
    except (UnidentifiedImageError, *_DECODE_ERRORS):
        raise ValueError("not a JPEG file") from None
    with image:
        # The header gives the size, so an oversized image is refused before decoding.
        if max(image.size) > THUMB_MAX_SIDE:
            width, height = image.size
            raise ValueError(
                f"thumbnail is {width}x{height} pixels, over {THUMB_MAX_SIDE} on a side"
            )
        try:
            image.load()
            pixels = image.convert("RGB")  # decodes every scan
        except _DECODE_ERRORS as exc:
            raise ValueError(f"cannot decode the JPEG: {exc}") from None
    return _encode(pixels)


class LocalTasks:
    """Samples of the tasks a registry knows, by id, read once per task and shared by all runs.

    Records carry answers, not questions or image paths: both come from here, and only when
    the task's spec file is the one the run used (same sha256 as in its manifest), so that a
    changed task never lends a run the wrong question or image.
    """

    def __init__(self, registry: TaskRegistry | None):
        self.registry = registry
        self._samples: dict[str, dict[str, Sample] | None] = {}

    def samples(self, task: str, manifest: RunManifest | None = None) -> dict[str, Sample] | None:
        """The task's samples by id, or None when the task, its data or its spec differ here."""
        if self.registry is None or task not in self.registry.specs:
            return None
        if manifest is not None:
            ran = next((t for t in manifest.tasks if t.name == task), None)
            if ran is not None and ran.spec_sha256 != self.registry.specs[task].sha256:
                return None
        if task not in self._samples:
            self._samples[task] = self._load(task)
        return self._samples[task]

    def _load(self, task: str) -> dict[str, Sample] | None:
        assert self.registry is not None
        try:
            loaded = self.registry.get(task)
            if not loaded.data_available():
                return None
            return {sample.id: sample for sample in loaded.samples()}
        except UserError:
            return None  # unreadable data: no questions or thumbnails, the records alone


class LocalThumbnails:
    """Thumbnails of records' samples from their first image, each image encoded once however
    many records or runs share it; at most `max_images` distinct images when given."""

    def __init__(self, tasks: LocalTasks, max_images: int | None = None):
        self.tasks = tasks
        self.max_images = max_images
        self._by_path: dict[Path, bytes | None] = {}

    def for_records(
        self, records: Iterable[Record], manifest: RunManifest | None = None
    ) -> dict[str, bytes]:
        """Thumbnails by `thumbnail_key`, in record order; `manifest` as for LocalTasks.samples.

        A sample whose task, data or image is unavailable (or whose input failed) gets none.
        """
        thumbnails: dict[str, bytes] = {}
        for record in records:
            samples = self.tasks.samples(record.task, manifest)
            sample = samples.get(record.sample_id) if samples else None
            if sample is None or sample.error is not None or not sample.images:
                continue
            data = self._thumbnail(sample.images[0])
            if data is not None:
                thumbnails[thumbnail_key(record.task, record.sample_id)] = data
        return thumbnails

    def _thumbnail(self, path: Path) -> bytes | None:
        if path not in self._by_path:
            if self.max_images is not None and len(self._by_path) >= self.max_images:
                return None
            try:
                self._by_path[path] = make_thumbnail(path)
            except UserError:
                self._by_path[path] = None  # a bad image: the sample shows no thumbnail
        return self._by_path[path]


def collect_thumbnails(
    registry: TaskRegistry, records: Iterable[Record], max_images: int
) -> dict[str, bytes]:
    """Thumbnails of a run's records for its bundle, from the tasks' own data.

    At most `max_images` distinct images are used, in record order, so that huge runs still
    make bundles of bounded size.
    """
    return LocalThumbnails(LocalTasks(registry), max_images).for_records(records)
