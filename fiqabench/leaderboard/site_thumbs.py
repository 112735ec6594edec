"""Thumbnails of the sample browser: one file per content hash under the site root.

Every thumbnail a submission holds is a JPEG encoded by bundle_thumbs: re-encoded from a
bundle's member on reading, or made from the task's image for a run folder.
"""

from __future__ import annotations

import hashlib
from pathlib import Path


class ThumbnailWriter:
    """Writes `thumbs/<sha256>.jpg` under the site root, each distinct content once."""

    def __init__(self, root: Path):
        self.root = root
        self.names: set[str] = set()
        # The same bytes object is shared by submissions built from one source; hashing it
        # once per object keeps a 50-model build from re-hashing identical thumbnails.
        self._by_object: dict[int, tuple[bytes, str]] = {}

    def add(self, data: bytes) -> str:
        """The thumbnail's path from the site root."""
        known = self._by_object.get(id(data))
        if known is not None and known[0] is data:
            return known[1]
        name = f"thumbs/{hashlib.sha256(data).hexdigest()}.jpg"
        if name not in self.names:
            path = self.root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            self.names.add(name)
        self._by_object[id(data)] = (data, name)
        return name
