"""SQLite record store: each successful response is committed the moment it completes.

Keyed by the request's content hash (model identity and revision, rendered prompt, image bytes,
generation settings, harness version), so a changed input can never be served a stale answer.
Failed calls are never stored, so the next run retries them.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from fiqabench.benchmark.schema import Request, Response

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    task TEXT NOT NULL,
    sample_id TEXT NOT NULL,
    response TEXT NOT NULL,
    created REAL NOT NULL
)
"""
_LOOKUP_CHUNK = 500  # stays under SQLite's limit on bound parameters


class RecordStore:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        # WAL: a commit is one append, readers never block the writer, and a killed process
        # loses nothing already committed. NORMAL sync is durable across process crashes.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)

    def get_many(self, keys: Iterable[str]) -> dict[str, Response]:
        wanted = list(dict.fromkeys(keys))
        found: dict[str, Response] = {}
        with self._lock:
            for start in range(0, len(wanted), _LOOKUP_CHUNK):
                chunk = wanted[start : start + _LOOKUP_CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT key, response FROM responses WHERE key IN ({marks})", chunk
                )
                found.update((key, Response.model_validate_json(body)) for key, body in rows)
        return found

    def put(self, request: Request, model: str, response: Response) -> None:
        if not response.ok:
            raise ValueError("the record store keeps successful responses only")
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?)",
                (
                    request.key,
                    model,
                    request.task,
                    request.sample_id,
                    response.model_dump_json(),
                    time.time(),
                ),
            )

    def count(self) -> int:
        with self._lock:
            (total,) = self._db.execute("SELECT COUNT(*) FROM responses").fetchone()
        return int(total)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> RecordStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
