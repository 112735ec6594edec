"""Model calls shared by the pipeline and the judges: content keys, and collecting responses."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from fiqabench.benchmark.schema import Request, Response
from fiqabench.benchmark.store import RecordStore


class ProgressSink(Protocol):
    def start(self, task: str, total: int) -> None: ...
    def advance(self, task: str, amount: int = 1) -> None: ...


class NoProgress:
    def start(self, task: str, total: int) -> None:
        return None

    def advance(self, task: str, amount: int = 1) -> None:
        return None


def content_key(document: object) -> str:
    """sha256 of a JSON document in canonical form: the record store's key."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def collect(
    pending: Sequence[Request],
    stream: Iterable[tuple[Request, Response]],
    store: RecordStore,
    model: str,
    advance: Callable[[], None] = lambda: None,
) -> dict[str, Response]:
    """Responses by request key: one per pending request, an error where none came back.

    A runner that crashes fails its remaining requests, not the run; what it answered before
    the crash is already in the store.
    """
    fresh: dict[str, Response] = {}
    try:
        for request, response in stream:
            if response.ok:
                store.put(request, model, response)
            fresh[request.key] = response
            advance()
    except Exception as exc:
        message = f"runner failed: {type(exc).__name__}: {exc}"
        for request in pending:
            fresh.setdefault(request.key, Response(error=message))
    for request in pending:
        fresh.setdefault(request.key, Response(error="runner returned no response"))
    return fresh
