"""The runner interface: requests in, responses (text, log-probs, usage, latency, error) out."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol, runtime_checkable

from fiqabench.benchmark.schema import ModelIdentity, Request, Response

__all__ = ["LevelScorer", "ModelIdentity", "Runner"]


class Runner(Protocol):
    identity: ModelIdentity

    def generate(self, requests: Sequence[Request]) -> Iterator[tuple[Request, Response]]:
        """Yield each request with its response as soon as it completes, in any order.

        A failed call yields a Response with `error` set; it must never raise for one request.
        """
        ...

    def close(self) -> None: ...


@runtime_checkable
class LevelScorer(Protocol):
    """A runner that can score level prompts from next-token probabilities (Q-Align style)."""

    identity: ModelIdentity

    def score_levels(
        self,
        requests: Sequence[Request],
        levels: Sequence[str],
        weights: Sequence[float] | None = None,
    ) -> Iterator[tuple[Request, Response]]:
        """Yield each request with `Response(score=expectation, logprobs=...)` or an error."""
        ...
