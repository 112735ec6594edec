"""Seeded chance baseline: what a model that guesses uniformly would score."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence

from fiqabench.benchmark.schema import Request, Response, Usage
from fiqabench.runners.base import ModelIdentity

NEUTRAL_SENTENCE = "The image quality of this portrait is average."


class RandomRunner:
    """Answers from the request's answer space: a letter, a non-empty subset, true or false,
    a uniform score or level."""

    def __init__(self, identity: ModelIdentity, seed: int = 0):
        self.identity = identity
        self.seed = seed

    def answer(self, request: Request) -> str:
        # Seeded per request, not per call order, so a resumed run draws the same answers.
        rng = random.Random(f"{self.seed}:{request.task}:{request.sample_id}")
        space = request.answer_space
        if space is None or space.type in ("open", "describe"):
            return NEUTRAL_SENTENCE
        if space.type == "flags":
            answer: dict[str, object] = {space.key or "score": round(rng.uniform(0, 100), 1)}
            answer.update({flag: rng.random() < 0.5 for flag in space.flags})
            return json.dumps(answer)
        if space.type == "score":
            if space.levels is not None:
                return str(rng.randint(1, space.levels))
            return json.dumps({space.key or "score": round(rng.uniform(space.low, space.high), 1)})
        if space.type == "tf":
            return rng.choice(["true", "false"])
        if space.type == "single":
            return rng.choice(space.letters)
        size = rng.randint(1, len(space.letters))
        return ", ".join(sorted(rng.sample(space.letters, size)))

    def generate(self, requests: Sequence[Request]) -> Iterator[tuple[Request, Response]]:
        for request in requests:
            text = self.answer(request)
            yield request, Response(text=text, usage=Usage(output_tokens=len(text.split())))

    def close(self) -> None:
        return None
