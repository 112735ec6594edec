"""A submission as the leaderboard sees it: one run's results, its records and thumbnails."""

from __future__ import annotations

from dataclasses import dataclass, field

from fiqabench.benchmark.results import ResultsFile
from fiqabench.benchmark.schema import Record


@dataclass(frozen=True)
class Submission:
    name: str  # unique within a leaderboard (the bundle's file stem)
    results: ResultsFile
    records: list[Record]
    # "task/sample_id" → JPEG bytes of a small thumbnail of the sample's first image
    thumbnails: dict[str, bytes] = field(default_factory=dict)
