"""Data-parallel shards: `--shard I/N` runs one deterministic slice of every task's samples.

The samples of a task (after `--limit`) are ranked by the sha256 of their id; shard I of N
(1-based) takes those whose rank is I-1 modulo N, in the task's own order. Shard sizes differ by
at most one, and the slice depends only on the sample ids, never on the machine or the run.
Hashing, not plain striding or blocks: task data is often periodic (four question types per
image, one prompt variant after another), and striding or blocks would then give one shard all
open-ended questions or all of one variant; a hashed order gives each shard a fair mix, so shards
take similar time.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from fiqabench.errors import UserError


class Identified(Protocol):
    @property
    def id(self) -> str: ...


S = TypeVar("S", bound=Identified)

_SHARD = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count`, both 1-based: `Shard(2, 4)` is written `2/4`."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 1 <= self.index <= self.count:
            raise UserError(
                f"--shard {self.index}/{self.count} does not exist: shards are numbered "
                f"1/N to N/N, e.g. 1/{max(self.count, 2)}"
            )

    @classmethod
    def parse(cls, text: str) -> Shard:
        """`'2/4'` -> Shard(2, 4); anything else is a UserError saying what to write."""
        match = _SHARD.fullmatch(text)
        if match is None:
            raise UserError(f"--shard takes I/N, e.g. 2/4 for the second of four, not '{text}'")
        return cls(int(match.group(1)), int(match.group(2)))

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def positions(self, ids: Sequence[str]) -> list[int]:
        """Positions, in ascending order, of the ids this shard takes."""
        # The position breaks ties, so that even repeated ids are split exactly.
        ranked = sorted(range(len(ids)), key=lambda position: (_digest(ids[position]), position))
        return sorted(ranked[self.index - 1 :: self.count])

    def select(self, samples: Sequence[S]) -> list[S]:
        """This shard's samples, in their order in `samples`."""
        return [samples[p] for p in self.positions([sample.id for sample in samples])]


def _digest(sample_id: str) -> bytes:
    return hashlib.sha256(sample_id.encode("utf-8")).digest()
