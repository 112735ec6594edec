"""Generate the synthetic mix-degradation benchmark (protocols.md §6; paper §III-D, §IV-F).

    python -m fiqabench.tasks.mixdeg --src FACES --out DIR [--seed 0] [--variants 1]
                                     [--no-ladders] [--max-side 512]
    python -m fiqabench.tasks.mixdeg --mini     # rebuild the shipped mini data

Every face image under ``src`` (jpg, jpeg, png, webp; searched recursively, sorted) is a clean
reference. It is first shrunk with Lanczos so that its longest side is at most ``max_side``
(never enlarged; ``None`` keeps the size), then written as:

- ``clean``: the reference itself; ground truth all zero.
- ``mixed`` (``variants`` per reference): three distinct artifacts of :data:`ARTIFACTS`, one
  ``hard`` and two ``mild``, the choice and every strength drawn by a seeded RNG.
- ``ladder`` (``ladders=True``): each artifact alone at five increasing strengths, mild to hard,
  for monotonicity analyses; bad exposure has one ladder under- and one over-exposed.

Strengths (mild and hard are drawn uniformly from the range; see :data:`STRENGTHS`,
:data:`EXPOSURE_GAMMA` and :data:`LADDERS`):

==============  ==============================  =======  =========  =========================
artifact        parameter                       mild     hard       ladder steps 1-5
==============  ==============================  =======  =========  =========================
blur            Gaussian sigma, px at 512 px    1-2      4-6        1, 2, 3, 4.5, 6
noise           Gaussian sigma per channel,     5-15     30-50      5, 12, 20, 32, 50
                0-255 units
low_resolution  downscale factor (box filter),  2        6-8        2, 3, 4, 6, 8
                bicubic upscale
compression     JPEG quality (Pillow, integer)  40-60    5-10       60, 40, 20, 10, 5
poor_lighting   gamma, under-exposed (darker)   1.4-1.6  2.5-3.5    1.4, 1.8, 2.2, 2.8, 3.5
poor_lighting   gamma, over-exposed (brighter)  0.7      0.35-0.45  0.7, 0.6, 0.5, 0.42, 0.35
==============  ==============================  =======  =========  =========================

A mixed image's exposure direction is drawn (under or over, even odds). The blur sigma is the
only strength tied to the image's size: it is given for a 512 px image and scaled by
``longest side / 512`` so that it hides the same facial detail at every size (0.5-1 mild, 2-3
hard at 256 px), but never by less than :data:`MIN_BLUR_SCALE`. The downscale factor is
already relative to the size; noise and JPEG act per pixel. Artifacts are applied in the fixed
physical order of :data:`APPLY_ORDER` (lighting, optics, sampling, sensor noise, then JPEG); a
mixed item's ``applied`` list follows that order and records every parameter actually used
(floats are rounded before use, so the manifest holds the exact values).

All images are saved losslessly as PNG, so the only JPEG artifacts are those of the
``compression`` ground truth (applied in memory: encode, decode). Randomness comes only from
``numpy.random.default_rng`` seeded with ``seed``, a hash of the reference's relative path and
the variant, so adding or removing a reference changes no other reference's images. The same
inputs and seed give byte-identical files with the same Pillow and zlib builds; other builds
may compress PNGs to other bytes, and JPEG round trips may differ by a grey level or so.

Output layout: ``images/<reference path without suffix>/{clean, mixed_K,
ladder_<artifact>[_<direction>]_<step>}.png``, ``manifest.jsonl`` (one :class:`MixdegItem` per
line) and ``generation.json`` (settings, strengths and counts).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from fiqabench import __version__
from fiqabench.benchmark.images import load_rgb
from fiqabench.errors import UserError, describe_validation_error
from fiqabench.tasks import degradations as dg

Artifact = Literal["blur", "noise", "low_resolution", "compression", "poor_lighting"]
Intensity = Literal["mild", "hard"]
Strength = Literal["mild", "hard", "ladder"]
Level = Literal["clean", "mixed", "ladder"]
Direction = Literal["under", "over"]
ParamValue = int | float | str
Params = dict[str, ParamValue]

ARTIFACTS: tuple[Artifact, ...] = get_args(Artifact)
"""The five artifacts, in the order of the 5-bit ground-truth vector."""
FLAG_KEYS: dict[Artifact, str] = {artifact: f"has_{artifact}" for artifact in ARTIFACTS}
"""The detection prompt's boolean for each artifact."""
APPLY_ORDER: tuple[Artifact, ...] = (
    "poor_lighting",
    "blur",
    "low_resolution",
    "noise",
    "compression",
)
"""Physical order of application: scene lighting, optics, sampling, sensor noise, encoding."""
ARTIFACTS_PER_MIX = 3
REFERENCE_SIDE = 512
"""Image size (longest side, px) at which the blur sigmas are given."""
MIN_BLUR_SCALE = 0.5
"""Blur sigmas shrink with the image down to half (256 px), no further: below that the mildest
blur would round away to nothing in 8-bit pixels and the ground truth would lie."""
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp"})

STRENGTHS: dict[Artifact, dict[Intensity, tuple[float, float]]] = {
    "blur": {"mild": (1.0, 2.0), "hard": (4.0, 6.0)},  # Gaussian sigma, px at REFERENCE_SIDE
    "noise": {"mild": (5.0, 15.0), "hard": (30.0, 50.0)},  # Gaussian sigma, 0-255
    "low_resolution": {"mild": (2.0, 2.0), "hard": (6.0, 8.0)},  # downscale factor
    "compression": {"mild": (40, 60), "hard": (5, 10)},  # JPEG quality, inclusive
}
"""(low, high) of each intensity; bad exposure is in :data:`EXPOSURE_GAMMA`."""
EXPOSURE_GAMMA: dict[Direction, dict[Intensity, tuple[float, float]]] = {
    "under": {"mild": (1.4, 1.6), "hard": (2.5, 3.5)},
    "over": {"mild": (0.7, 0.7), "hard": (0.35, 0.45)},
}
"""(low, high) of the exposure gamma; above 1 darkens, below 1 brightens."""


@dataclass(frozen=True)
class Ladder:
    """One artifact alone at increasing strengths; ``values`` are in its parameter's units."""

    artifact: Artifact
    values: tuple[float, ...]
    direction: Direction | None = None

    @property
    def name(self) -> str:
        return f"{self.artifact}_{self.direction}" if self.direction else self.artifact


LADDERS: tuple[Ladder, ...] = (
    Ladder("blur", (1.0, 2.0, 3.0, 4.5, 6.0)),  # sigma at REFERENCE_SIDE
    Ladder("noise", (5.0, 12.0, 20.0, 32.0, 50.0)),
    Ladder("low_resolution", (2.0, 3.0, 4.0, 6.0, 8.0)),
    Ladder("compression", (60, 40, 20, 10, 5)),  # lower quality is stronger
    Ladder("poor_lighting", (1.4, 1.8, 2.2, 2.8, 3.5), "under"),
    Ladder("poor_lighting", (0.7, 0.6, 0.5, 0.42, 0.35), "over"),
)

MANIFEST_FILE = "manifest.jsonl"
GENERATION_FILE = "generation.json"
IMAGES_DIR = "images"
_MIXED_STREAM, _LADDER_STREAM = 0, 1  # separate RNG streams: variants never shift ladders

_MINI_DATA = Path(__file__).resolve().parent / "mini" / "data"
MINI_SOURCES = _MINI_DATA / "sources"
MINI_DIR = _MINI_DATA / "mixdeg"
MINI_VARIANTS = 3
MINI_MAX_SIDE = 192  # and ladders for one reference: 3.1 MB (256 px, three: 9.8 MB)
MINI_LADDER_REFERENCES = 1


class AppliedArtifact(BaseModel):
    """One artifact as applied: its strength class and the exact parameters used."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    artifact: Artifact
    strength: Strength
    params: Params


class LadderStep(BaseModel):
    """Where a ladder image sits: step 1 (mild) to 5 (hard) at the ladder's nominal value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    artifact: Artifact
    step: int
    value: float | int
    direction: Direction | None = None


class MixdegItem(BaseModel):
    """One manifest line: an image and its ground truth (a flag per artifact, the hard one)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    image: str
    reference: str
    level: Level
    artifacts: dict[Artifact, Literal[0, 1]]
    hard: Artifact | None
    applied: list[AppliedArtifact]
    ladder: LadderStep | None

    @model_validator(mode="after")
    def _consistent(self) -> MixdegItem:
        problem = _inconsistency(self)
        if problem:
            raise ValueError(problem)
        return self

    def flags(self) -> dict[str, bool]:
        """The ground truth under the detection prompt's keys (``has_blur``, ...)."""
        return {FLAG_KEYS[artifact]: bool(self.artifacts[artifact]) for artifact in ARTIFACTS}


def _inconsistency(item: MixdegItem) -> str | None:
    """Why the item's ground truth contradicts its level and applied list, if it does."""
    applied = [entry.artifact for entry in item.applied]
    hard = [entry.artifact for entry in item.applied if entry.strength == "hard"]
    if set(item.artifacts) != set(ARTIFACTS):
        return f"artifacts must have exactly the keys {list(ARTIFACTS)}"
    if {a for a, flag in item.artifacts.items() if flag} != set(applied):
        return "artifacts flags differ from the applied artifacts"
    if item.hard != (hard[0] if len(hard) == 1 else None):
        return "hard must name the one artifact applied at hard strength"
    expected_count = {"clean": 0, "mixed": ARTIFACTS_PER_MIX, "ladder": 1}[item.level]
    if len(set(applied)) != len(applied) or len(applied) != expected_count:
        return f"a {item.level} image has {expected_count} distinct applied artifacts"
    strengths = sorted(entry.strength for entry in item.applied)
    if item.level == "mixed" and strengths != ["hard", "mild", "mild"]:
        return "a mixed image has one hard and two mild artifacts"
    ladder_artifact = item.ladder.artifact if item.ladder else None
    if ladder_artifact != (applied[0] if item.level == "ladder" else None):
        return "ladder is set exactly on ladder images, for their artifact"
    return None


@dataclass(frozen=True)
class MixdegManifest:
    """A generated (or loaded) benchmark: its folder and its items in manifest order."""

    root: Path
    items: tuple[MixdegItem, ...]

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST_FILE

    @property
    def counts(self) -> dict[str, int]:
        levels = [item.level for item in self.items]
        return {
            "references": len({item.reference for item in self.items}),
            **{level: levels.count(level) for level in get_args(Level)},
            "images": len(self.items),
        }


@dataclass(frozen=True)
class _Plan:
    """The settings shared by every reference of one generation."""

    out: Path
    seed: int
    variants: int
    max_side: int | None


def generate_mixdeg(
    src: Path,
    out: Path,
    *,
    seed: int = 0,
    variants: int = 1,
    ladders: bool = True,
    max_side: int | None = 512,
    ladder_references: int | None = None,
) -> MixdegManifest:
    """Write the mix-degradation benchmark of the face images under ``src`` into ``out``.

    ``ladder_references`` limits the ladders to the first N references (sorted order); ``None``
    gives every reference ladders. ``out`` must be new, empty or an earlier output of this
    generator (whose images are then replaced). Raises UserError for a missing or empty
    ``src``, an unreadable image or bad settings.
    """
    _check_settings(seed, variants, max_side, ladder_references)
    if src.resolve().is_relative_to(out.resolve()):  # replacing `out` would delete the sources
        raise UserError("the output folder must not contain the source folder", path=out)
    sources = find_sources(src, exclude=out)
    _prepare_output(out)
    plan = _Plan(out=out, seed=seed, variants=variants, max_side=max_side)
    ladder_count = len(sources) if ladder_references is None else ladder_references
    ladder_count = ladder_count if ladders else 0
    items: list[MixdegItem] = []
    for index, path in enumerate(sources):
        reference = path.relative_to(src).as_posix()
        items.extend(_render_reference(path, reference, plan, with_ladders=index < ladder_count))
    manifest = MixdegManifest(root=out, items=tuple(items))
    _write_manifest(manifest)
    _write_generation(manifest, plan, ladders=ladder_count > 0)
    return manifest


def find_sources(src: Path, *, exclude: Path | None = None) -> list[Path]:
    """The image files under ``src``, sorted, skipping anything inside ``exclude``."""
    if not src.is_dir():
        raise UserError("source folder of clean face images not found", path=src)
    skipped = exclude.resolve() if exclude is not None else None
    sources = sorted(
        path
        for path in src.rglob("*")
        if path.suffix.lower() in IMAGE_SUFFIXES
        and path.is_file()
        and not (skipped is not None and path.resolve().is_relative_to(skipped))
    )
    if not sources:
        suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
        raise UserError(f"no face images ({suffixes}) found in this folder", path=src)
    _check_unique_names(src, sources)
    return sources


def build_mini_degradation(out: Path = MINI_DIR, seed: int = 0) -> MixdegManifest:
    """Rebuild the shipped mini benchmark from the package's nine portraits.

    At 192 px with three mixed variants each and ladders for the first portrait only: 66 images,
    about 3 MB (the package should stay small).
    """
    return generate_mixdeg(
        MINI_SOURCES,
        out,
        seed=seed,
        variants=MINI_VARIANTS,
        ladders=True,
        max_side=MINI_MAX_SIDE,
        ladder_references=MINI_LADDER_REFERENCES,
    )


def load_manifest(root: Path) -> MixdegManifest:
    """Read and validate ``root/manifest.jsonl``; UserError names the line of any bad item."""
    path = root / MANIFEST_FILE
    if not path.is_file():
        raise UserError("mix-degradation manifest not found", path=path)
    items = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(MixdegItem.model_validate_json(line))
        except ValidationError as exc:
            raise UserError(describe_validation_error(exc), path=path, line=number) from None
    return MixdegManifest(root=root, items=tuple(items))


def apply_artifact(pixels: dg.RGB, artifact: Artifact, params: Params) -> dg.RGB:
    """Apply one artifact with the parameters recorded in the manifest."""
    if artifact == "blur":
        return dg.gaussian_blur(pixels, float(params["sigma"]))
    if artifact == "noise":
        rng = np.random.default_rng(int(params["seed"]))
        return dg.gaussian_noise(pixels, float(params["sigma"]), rng)
    if artifact == "low_resolution":
        return dg.low_resolution(pixels, float(params["factor"]), upsample="bicubic")
    if artifact == "compression":
        return dg.jpeg_compression(pixels, int(params["quality"]))
    return dg.exposure(pixels, float(params["gamma"]))


def _check_settings(
    seed: int, variants: int, max_side: int | None, ladder_references: int | None
) -> None:
    if seed < 0:
        raise UserError(f"seed must be >= 0, not {seed}")
    if variants < 0:
        raise UserError(f"variants must be >= 0, not {variants}")
    if max_side is not None and max_side < 16:
        raise UserError(f"max_side must be at least 16 px, not {max_side}")
    if ladder_references is not None and ladder_references < 0:
        raise UserError(f"ladder_references must be >= 0, not {ladder_references}")


def _check_unique_names(src: Path, sources: Sequence[Path]) -> None:
    """Outputs are named after the reference without its suffix: a.jpg and a.png would clash."""
    seen: dict[Path, Path] = {}
    for path in sources:
        stem = path.relative_to(src).with_suffix("")
        if stem in seen:
            raise UserError(f"{seen[stem].name} and {path.name} share a name; rename one", path=src)
        seen[stem] = path


def _prepare_output(out: Path) -> None:
    """Empty an earlier output of ours; refuse any other non-empty folder (never lose data)."""
    if out.is_dir() and any(out.iterdir()):
        if not (out / GENERATION_FILE).is_file():
            raise UserError(
                "output folder is not empty and holds no earlier mix-degradation output", path=out
            )
        shutil.rmtree(out / IMAGES_DIR, ignore_errors=True)
        (out / MANIFEST_FILE).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)


def _render_reference(
    path: Path, reference: str, plan: _Plan, *, with_ladders: bool
) -> Iterator[MixdegItem]:
    """The clean copy, the mixed variants and (optionally) the ladders of one reference."""
    clean = _normalised(path, plan.max_side)
    folder = f"{IMAGES_DIR}/{Path(reference).with_suffix('').as_posix()}"
    yield _save(plan.out, f"{folder}/clean.png", clean, reference, "clean", [], None)
    for variant in range(1, plan.variants + 1):
        rng = _reference_rng(plan.seed, reference, _MIXED_STREAM, variant)
        applied = _draw_mix(rng, _blur_scale(clean))
        pixels = _apply_all(clean, applied)
        image = f"{folder}/mixed_{variant}.png"
        yield _save(plan.out, image, pixels, reference, "mixed", applied, None)
    if with_ladders:
        rng = _reference_rng(plan.seed, reference, _LADDER_STREAM, 0)
        for ladder in LADDERS:
            for step, value in enumerate(ladder.values, start=1):
                applied = [_ladder_artifact(ladder, value, rng, _blur_scale(clean))]
                pixels = _apply_all(clean, applied)
                image = f"{folder}/ladder_{ladder.name}_{step}.png"
                position = LadderStep(
                    artifact=ladder.artifact, step=step, value=value, direction=ladder.direction
                )
                yield _save(plan.out, image, pixels, reference, "ladder", applied, position)


def _normalised(path: Path, max_side: int | None) -> dg.RGB:
    """The image as RGB, shrunk with Lanczos to fit ``max_side`` (never enlarged)."""
    image = load_rgb(path)
    longest = max(image.size)
    if max_side is not None and longest > max_side:
        width, height = image.size
        size = (
            max(1, round(width * max_side / longest)),
            max(1, round(height * max_side / longest)),
        )
        image = image.resize(size, Image.Resampling.LANCZOS)
    return np.asarray(image, dtype=np.uint8).copy()


def _reference_rng(seed: int, reference: str, stream: int, variant: int) -> np.random.Generator:
    """An RNG of its own per reference, stream and variant (a hash, not the sorted position)."""
    digest = hashlib.sha256(reference.encode("utf-8")).digest()
    return np.random.default_rng([seed, int.from_bytes(digest[:8], "little"), stream, variant])


def _blur_scale(pixels: dg.RGB) -> float:
    return max(max(pixels.shape[:2]) / REFERENCE_SIDE, MIN_BLUR_SCALE)


def _draw_mix(rng: np.random.Generator, blur_scale: float) -> list[AppliedArtifact]:
    """Three distinct artifacts, the first drawn being hard, returned in APPLY_ORDER."""
    picked = [ARTIFACTS[int(i)] for i in rng.permutation(len(ARTIFACTS))[:ARTIFACTS_PER_MIX]]
    intensity: dict[Artifact, Intensity] = {a: "hard" if a == picked[0] else "mild" for a in picked}
    return [
        AppliedArtifact(
            artifact=artifact,
            strength=intensity[artifact],
            params=_draw_params(rng, artifact, intensity[artifact], blur_scale),
        )
        for artifact in APPLY_ORDER
        if artifact in intensity
    ]


def _draw_params(
    rng: np.random.Generator, artifact: Artifact, intensity: Intensity, blur_scale: float
) -> Params:
    """Draw one artifact's strength; floats are rounded first so the record is exact."""
    if artifact == "poor_lighting":
        direction: Direction = "under" if rng.random() < 0.5 else "over"
        return {
            "direction": direction,
            "gamma": _uniform(rng, EXPOSURE_GAMMA[direction][intensity]),
        }
    low, high = STRENGTHS[artifact][intensity]
    if artifact == "blur":
        return _blur_params(_uniform(rng, (low, high)), blur_scale)
    if artifact == "noise":
        return _noise_params(round(float(rng.uniform(low, high)), 1), rng)
    if artifact == "low_resolution":
        return {"factor": _uniform(rng, (low, high)), "upsample": "bicubic"}
    return {"quality": int(rng.integers(int(low), int(high), endpoint=True))}


def _ladder_artifact(
    ladder: Ladder, value: float, rng: np.random.Generator, blur_scale: float
) -> AppliedArtifact:
    params: Params
    if ladder.artifact == "blur":
        params = _blur_params(value, blur_scale)
    elif ladder.artifact == "noise":
        params = _noise_params(value, rng)
    elif ladder.artifact == "low_resolution":
        params = {"factor": value, "upsample": "bicubic"}
    elif ladder.artifact == "compression":
        params = {"quality": int(value)}
    else:
        params = {"direction": ladder.direction or "under", "gamma": value}
    return AppliedArtifact(artifact=ladder.artifact, strength="ladder", params=params)


def _uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return round(float(rng.uniform(*bounds)), 2)


def _blur_params(sigma_at_reference: float, blur_scale: float) -> Params:
    return {
        "sigma": round(sigma_at_reference * blur_scale, 3),
        f"sigma_at_{REFERENCE_SIDE}px": sigma_at_reference,
    }


def _noise_params(sigma: float, rng: np.random.Generator) -> Params:
    # A recorded seed of its own lets anyone replay the exact noise from the manifest.
    return {"sigma": sigma, "seed": int(rng.integers(2**32))}


def _apply_all(pixels: dg.RGB, applied: Sequence[AppliedArtifact]) -> dg.RGB:
    for entry in applied:
        pixels = apply_artifact(pixels, entry.artifact, entry.params)
    return pixels


def _save(
    out: Path,
    image: str,
    pixels: dg.RGB,
    reference: str,
    level: Level,
    applied: list[AppliedArtifact],
    ladder: LadderStep | None,
) -> MixdegItem:
    """Write the PNG (lossless: no encoding artifact beyond the ground truth) and its item."""
    target = out / image
    target.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(target, format="PNG", optimize=True)
    present = {entry.artifact for entry in applied}
    hard = next((entry.artifact for entry in applied if entry.strength == "hard"), None)
    return MixdegItem(
        id=image,
        image=image,
        reference=reference,
        level=level,
        artifacts={artifact: 1 if artifact in present else 0 for artifact in ARTIFACTS},
        hard=hard,
        applied=applied,
        ladder=ladder,
    )


def _write_manifest(manifest: MixdegManifest) -> None:
    lines = "".join(item.model_dump_json() + "\n" for item in manifest.items)
    manifest.manifest_path.write_text(lines, encoding="utf-8")


def _write_generation(manifest: MixdegManifest, plan: _Plan, *, ladders: bool) -> None:
    """Settings and counts, without paths or times, so that regeneration is byte-identical."""
    ladder_references = sorted({item.reference for item in manifest.items if item.ladder})
    record = {
        "generator": "fiqabench.tasks.mixdeg",
        "fiqabench_version": __version__,
        "seed": plan.seed,
        "variants": plan.variants,
        "max_side": plan.max_side,
        "ladders": ladders,
        "ladder_references": ladder_references,
        "apply_order": list(APPLY_ORDER),
        "artifacts": {artifact: FLAG_KEYS[artifact] for artifact in ARTIFACTS},
        "strengths": {
            **{artifact: dict(ranges) for artifact, ranges in STRENGTHS.items()},
            "poor_lighting": {d: dict(ranges) for d, ranges in EXPOSURE_GAMMA.items()},
        },
        "blur_sigma_reference_side": REFERENCE_SIDE,
        "ladder_values": {ladder.name: list(ladder.values) for ladder in LADDERS},
        "storage": "PNG (lossless); the compression artifact is a JPEG round trip in memory",
        "counts": manifest.counts,
    }
    text = json.dumps(record, indent=2) + "\n"
    (manifest.root / GENERATION_FILE).write_text(text, encoding="utf-8")


def _folder_size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--src", type=Path, help="folder of clean face images (recursive)")
    parser.add_argument("--out", type=Path, help="output folder (new, empty or an earlier output)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variants", type=int, default=1, help="mixed images per reference")
    parser.add_argument("--no-ladders", action="store_true", help="skip the severity ladders")
    parser.add_argument(
        "--max-side", type=int, default=512, help="shrink to this longest side; 0 keeps the size"
    )
    parser.add_argument(
        "--mini", action="store_true", help="rebuild the shipped mini data (--out optional)"
    )
    args = parser.parse_args(argv)
    if args.mini and args.src is not None:
        parser.error("--mini uses the shipped portraits: drop --src")
    if not args.mini and (args.src is None or args.out is None):
        parser.error("give --src and --out, or --mini")
    try:
        if args.mini:
            manifest = build_mini_degradation(args.out or MINI_DIR, seed=args.seed)
        else:
            manifest = generate_mixdeg(
                args.src,
                args.out,
                seed=args.seed,
                variants=args.variants,
                ladders=not args.no_ladders,
                max_side=args.max_side or None,
            )
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    counts = ", ".join(f"{count} {name}" for name, count in manifest.counts.items())
    size_mb = _folder_size(manifest.root) / 1e6
    print(f"wrote {counts} ({size_mb:.1f} MB) to {manifest.root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
