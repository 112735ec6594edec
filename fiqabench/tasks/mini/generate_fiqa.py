"""Generate ``mini-fiqa``: degraded portraits with a known severity order and face comparisons.

    python -m fiqabench.tasks.mini.generate_fiqa --out DIR --seed 0

Each shipped source portrait (``data/sources/``) is scaled to a longest side of 256 px and kept
clean, then degraded by each of six artifacts at three severities (see ``LADDERS``), giving
9 x 19 = 171 images. The pseudo opinion score of an image follows its severity only:
``mos = 100 - 25 * severity`` (clean = 100), so it orders images within each ladder and groups
equal severities across artifacts; it is a construction, not a human rating.

Comparisons: every pair of images. Pairs of the same identity are mated (Obama has three
distinct photos and two crops; the others are degraded copies of one photo), all others are
non-mated. Similarities come from SFace (extra ``face``) and are shipped in the CSV, so the task
runs without the extra; a face that cannot be detected counts as similarity -1 (a failure to
acquire is a non-match).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from fiqabench.tasks import degradations as dg

DATA_DIR = Path(__file__).resolve().parent / "data"
SOURCES_DIR = DATA_DIR / "sources"
FIQA_DIR = DATA_DIR / "fiqa"
MAX_SIDE = 256
SAVE_QUALITY = 95

# Severity 1..3 of each artifact at 256 px; mild to hard as in protocols.md §6.
LADDERS: dict[str, tuple[float, ...]] = {
    "blur": (1.0, 2.5, 4.5),  # Gaussian sigma, px
    "noise": (8.0, 20.0, 40.0),  # Gaussian sigma, 0-255
    "lowres": (2.0, 4.0, 8.0),  # downscale factor, bicubic upscale
    "jpeg": (30.0, 12.0, 5.0),  # JPEG quality
    "under": (1.5, 2.2, 3.0),  # gamma
    "over": (0.7, 0.5, 0.35),  # gamma
}


@dataclass(frozen=True)
class Variant:
    source: str
    identity: str
    artifact: str  # "clean" or a LADDERS key
    severity: int  # 0 for clean
    parameter: float | None

    @property
    def image(self) -> str:
        stem = Path(self.source).stem
        suffix = "clean" if self.artifact == "clean" else f"{self.artifact}{self.severity}"
        return f"images/{stem}__{suffix}.jpg"

    @property
    def mos(self) -> float:
        return 100.0 - 25.0 * self.severity


def degrade(pixels: dg.RGB, artifact: str, value: float, rng: np.random.Generator) -> dg.RGB:
    if artifact == "blur":
        return dg.gaussian_blur(pixels, value)
    if artifact == "noise":
        return dg.gaussian_noise(pixels, value, rng)
    if artifact == "lowres":
        return dg.low_resolution(pixels, value)
    if artifact == "jpeg":
        return dg.jpeg_compression(pixels, int(value))
    return dg.exposure(pixels, value)


def load_sources(sources_dir: Path) -> list[tuple[str, str]]:
    provenance = json.loads((sources_dir / "provenance.json").read_text(encoding="utf-8"))
    return [(entry["file"], entry["identity"]) for entry in provenance["files"]]


def variants(sources: Sequence[tuple[str, str]]) -> list[Variant]:
    planned = []
    for source, identity in sources:
        planned.append(Variant(source, identity, "clean", 0, None))
        for artifact, ladder in LADDERS.items():
            for severity, value in enumerate(ladder, start=1):
                planned.append(Variant(source, identity, artifact, severity, value))
    return planned


def scaled_source(path: Path) -> dg.RGB:
    with Image.open(path) as opened:
        image = opened.convert("RGB")
    image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    return np.asarray(image, dtype=np.uint8).copy()


def render(out: Path, planned: Sequence[Variant], sources_dir: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    cache: dict[str, dg.RGB] = {}
    for variant in planned:
        if variant.source not in cache:
            cache[variant.source] = scaled_source(sources_dir / variant.source)
        pixels = cache[variant.source]
        if variant.parameter is not None:
            pixels = degrade(pixels, variant.artifact, variant.parameter, rng)
        target = out / variant.image
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(target, format="JPEG", quality=SAVE_QUALITY)


def write_manifests(out: Path, planned: Sequence[Variant]) -> None:
    with (out / "images.jsonl").open("w", encoding="utf-8") as handle:
        for variant in planned:
            record = {
                "id": variant.image,
                "image": variant.image,
                "subject": variant.identity,
                "source_image": variant.source,
                "artifact": variant.artifact,
                "severity": variant.severity,
                "parameter": variant.parameter,
            }
            handle.write(json.dumps(record) + "\n")
    with (out / "mos.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "mos"])
        writer.writerows((variant.image, variant.mos) for variant in planned)


def write_comparisons(out: Path, planned: Sequence[Variant]) -> None:
    """All pairs, with SFace similarities (needs the `face` extra when generating)."""
    from fiqabench.benchmark.biometrics import SFaceRecognizer, compute_similarities
    from fiqabench.benchmark.comparisons import Comparisons, write_comparisons_csv

    pairs = list(itertools.combinations(planned, 2))
    comparisons = Comparisons(
        a=np.array([p[0].image for p in pairs]),
        b=np.array([p[1].image for p in pairs]),
        mated=np.array([p[0].identity == p[1].identity for p in pairs]),
        similarity={},
    )
    similarity, _ = compute_similarities(comparisons, out, [SFaceRecognizer()])
    comparisons = Comparisons(
        a=comparisons.a,
        b=comparisons.b,
        mated=comparisons.mated,
        similarity={name: np.round(values, 5) for name, values in similarity.items()},
    )
    write_comparisons_csv(out / "comparisons.csv", comparisons)


def generate(out: Path, seed: int = 0, sources_dir: Path = SOURCES_DIR) -> list[Variant]:
    planned = variants(load_sources(sources_dir))
    out.mkdir(parents=True, exist_ok=True)
    render(out, planned, sources_dir, seed)
    write_manifests(out, planned)
    write_comparisons(out, planned)
    return planned


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=FIQA_DIR)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    planned = generate(args.out, args.seed)
    print(f"wrote {len(planned)} images and their comparisons to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
