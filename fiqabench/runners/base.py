"""The runner interface: requests in, responses (text, log-probs, usage, latency, error) out."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from fiqabench.benchmark.schema import ModelIdentity, Request, Response

__all__ = ["ModelIdentity", "Runner"]


class Runner(Protocol):
    identity: ModelIdentity

    def generate(self, requests: Sequence[Request]) -> Iterator[tuple[Request, Response]]:
        """Yield each request with its response as soon as it completes, in any order.

        A failed call yields a Response with `error` set; it must never raise for one request.
        """
        ...

    def close(self) -> None: ...
