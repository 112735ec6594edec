"""Harness overhead per sample with a zero-latency runner: first run and fully cached rerun.

usage: python benchmarks/overhead.py [--samples N] [--images M]

The reference, measured in the same run, is the bare floor of the same work: read each JSONL
line, parse it and hash its image's bytes. Ratios say how much the harness costs above it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from fiqabench.benchmark.pipeline import Evaluation
from fiqabench.benchmark.schema import ModelIdentity, Request, Response
from fiqabench.benchmark.store import RecordStore
from fiqabench.tasks.registry import TaskRegistry

SPEC = "name: overhead-qa\nkind: qa\nprotocol: bench\ndata:\n  jsonl: items.jsonl\n"


class InstantRunner:
    identity = ModelIdentity(alias="instant", runner="bench", model_id="instant")

    def generate(self, requests: Sequence[Request]) -> Iterator[tuple[Request, Response]]:
        for request in requests:
            yield request, Response(text="B")

    def close(self) -> None:
        return None


def build_task(folder: Path, samples: int, images: int) -> None:
    rng = np.random.default_rng(0)
    for index in range(images):
        pixels = rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"img{index}.png")
    kinds = ["single", "multi", "tf", "open"]
    with (folder / "items.jsonl").open("w") as handle:
        for index in range(samples):
            kind = kinds[index % 4]
            item: dict[str, object] = {
                "id": f"s{index}",
                "image": f"img{index % images}.png",
                "question": f"Which distortion is strongest in portrait {index}?",
                "type": kind,
                "scope": "global",
                "dimension": "technical",
            }
            if kind in ("single", "multi"):
                item["options"] = ["Blur", "Noise", "JPEG", "None"]
                item["answer"] = "B" if kind == "single" else ["A", "B"]
            else:
                item["answer"] = True if kind == "tf" else "Blurred and noisy."
            handle.write(json.dumps(item) + "\n")
    (folder / "overhead.yaml").write_text(SPEC)


def reference_floor(folder: Path) -> float:
    started = time.perf_counter()
    for line in (folder / "items.jsonl").read_text().splitlines():
        item = json.loads(line)
        hashlib.sha256((folder / item["image"]).read_bytes()).hexdigest()
    return time.perf_counter() - started


def measure(folder: Path, out: Path) -> float:
    started = time.perf_counter()
    task = TaskRegistry([folder]).get("overhead-qa")
    with RecordStore(out / "records.sqlite") as store:
        Evaluation(runner=InstantRunner(), store=store, output_dir=out).run([task])
    return time.perf_counter() - started


def timed_run(folder: Path, out: Path) -> float:
    """Time one evaluation in a fresh process, as a user's rerun would be (no warm caches)."""
    child = [sys.executable, __file__, "--measure", str(folder), str(out)]
    return float(subprocess.run(child, check=True, capture_output=True, text=True).stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--measure", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(measure(*args.measure))
        return
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        build_task(folder, args.samples, args.images)
        floor = reference_floor(folder)
        first = timed_run(folder, folder / "run")
        cached = timed_run(folder, folder / "run")
    per = 1000 / args.samples
    print(f"samples: {args.samples} over {args.images} images (256x256 PNG)")
    print(f"reference floor (parse line + hash image): {floor * per:.3f} ms/sample")
    print(f"first run:    {first * per:.3f} ms/sample  ({first / floor:.1f}x reference)")
    print(f"cached rerun: {cached * per:.3f} ms/sample  ({cached / floor:.1f}x reference)")


if __name__ == "__main__":
    main()
