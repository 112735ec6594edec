"""Generate ``mini-qa``: portrait quality Q&A whose answers are true by construction.

    python -m fiqabench.tasks.mini.generate_qa --out DIR --seed 0

Each of 60 *scenes* is a source portrait (``data/sources/``, face box from ``provenance.json``)
with known edits: global or face/background-only degradations, a style change or a crop that
places the face. Every scene is saved once (``images/mqa-img-NNN.jpg``, JPEG quality 95) and
asked four questions, one of each type (single, multi, true/false, open), so the types are
balanced by design. Four scene families fix scope and dimension:

- ``gt`` global technical: blur, noise, JPEG, low resolution, under/over-exposure, colour cast,
- ``ga`` global aesthetics: colour style (colour, grayscale, sepia) and face placement (crops),
- ``lt`` local technical: blur, noise, pixelation or a green tint on the face, the background,
  both or neither,
- ``la`` local aesthetics: face or background in deep shadow; face or background in grayscale.

Strengths are far above visibility thresholds, and two distortions that look alike (blur and
pixelation, JPEG and pixelation, JPEG and noise) never meet where a question must tell them
apart. The seed fixes the scene order, sources, strengths, distractors and option order.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from fiqabench.benchmark.schema import LETTERS, QAItem, QuestionType
from fiqabench.tasks import degradations as dg

DATA_DIR = Path(__file__).resolve().parent / "data"
SOURCES_DIR = DATA_DIR / "sources"
QA_DIR = DATA_DIR / "qa"
SAVE_QUALITY = 95  # high enough that the saved file adds no visible artifact of its own
ID_PREFIX = "mqa"

# Strengths at the sources' size (longest side <= 384 px); all clearly visible.
BLUR_SIGMA = (3.5, 5.0)  # Gaussian sigma in px
NOISE_SIGMA = (28.0, 40.0)  # Gaussian sigma on the 0-255 scale, independent per channel
JPEG_QUALITY = (5, 7)  # Pillow quality, inclusive range
LOWRES_FACTORS = (6, 8)  # keep 1/6 or 1/8 of each side, enlarge back with nearest neighbour
UNDER_GAMMA = (2.4, 3.0)
OVER_GAMMA = (0.35, 0.42)
OVER_GAIN = 1.1  # also clips the highlights, so overexposure is unmistakable
SHADOW_GAIN = 0.25  # "deep shadow": brightness scaled to a quarter
FACE_GROW = 0.10  # face region = detector box grown by 10 % per side (the box omits the hairline)
FEATHER = 0.15  # mask ramp outside the region, as a fraction of the face width

Region = Literal["global", "face", "background"]
Params = dict[str, float]
# tone and colour first, then detail loss, then sensor noise, JPEG last as in a real pipeline
RENDER_ORDER: tuple[str, ...] = ("under", "over", "shadow", "green", "magenta", "gray", "sepia")
RENDER_ORDER += ("blur", "lowres", "noise", "jpeg")


@dataclass(frozen=True)
class Kind:
    """A technical distortion and the words used to ask about it."""

    subdimension: str
    label: str  # option text naming it
    statement: str  # a claim that it affects the whole portrait
    predicate: str  # completes "The face ..." / "The background ..."
    aspect: str  # the quality aspect it spoils; one distortion per aspect and scene
    describe: Callable[[Params], str]  # completes "The portrait is ..."


KINDS: dict[str, Kind] = {
    "blur": Kind(
        "blur",
        "Blur (loss of sharpness)",
        "The portrait is noticeably blurred.",
        "is blurred",
        "sharpness",
        lambda p: f"strongly blurred (Gaussian blur, sigma {p['sigma']:.1f} px)",
    ),
    "noise": Kind(
        "noise",
        "Noise (grainy speckles)",
        "The portrait is covered in strong visible noise (grain).",
        "is covered in grainy noise",
        "noise",
        lambda p: f"covered in strong grainy noise (Gaussian, sigma {p['sigma']:.0f} of 255)",
    ),
    "jpeg": Kind(
        "artifacts",
        "JPEG compression artifacts (blockiness)",
        "The portrait shows blocky JPEG compression artifacts.",
        "shows blocky compression artifacts",
        "compression",
        lambda p: (
            f"heavily JPEG-compressed (quality {p['quality']:.0f}), with 8x8 blocks and ringing"
        ),
    ),
    "lowres": Kind(
        "artifacts",
        "Low resolution (pixelation)",
        "The portrait is pixelated, as if enlarged from a very low resolution.",
        "is pixelated",
        "sharpness",
        lambda p: (
            f"pixelated, as if reduced to 1/{p['factor']:.0f} of its resolution and enlarged "
            "again (square blocks)"
        ),
    ),
    "under": Kind(
        "exposure",
        "Underexposure (too dark)",
        "The portrait is underexposed (too dark).",
        "is much too dark",
        "exposure",
        lambda p: f"underexposed and much too dark (gamma {p['gamma']:.2f})",
    ),
    "over": Kind(
        "exposure",
        "Overexposure (too bright)",
        "The portrait is overexposed (too bright and washed out).",
        "is much too bright",
        "exposure",
        lambda p: f"overexposed, too bright and washed out (gamma {p['gamma']:.2f}, gain 1.1)",
    ),
    "green": Kind(
        "color",
        "A strong green colour cast",
        "The portrait has a strong green colour cast.",
        "has a strong green tint",
        "colour",
        lambda p: "tinted by a strong green colour cast",
    ),
    "magenta": Kind(
        "color",
        "A strong magenta colour cast",
        "The portrait has a strong magenta colour cast.",
        "has a strong magenta tint",
        "colour",
        lambda p: "tinted by a strong magenta colour cast",
    ),
}
GLOBAL_KINDS = tuple(KINDS)
LOCAL_KINDS = ("blur", "noise", "lowres", "green")
CONFUSABLE = {frozenset(p) for p in (("blur", "lowres"), ("jpeg", "lowres"), ("jpeg", "noise"))}
GOOD_ASPECT = {
    "sharpness": "sharp",
    "noise": "free of noise",
    "compression": "free of compression artifacts",
    "exposure": "well exposed",
    "colour": "natural in colour",
}
NO_PROBLEM = "No visible quality problem"
CLEAN_STATEMENT = "The portrait is free of visible distortions."
CLEAN_DESCRIPTION = (
    "The portrait shows no visible quality problem: it is sharp, free of noise and compression "
    "artifacts, well exposed and natural in colour."
)
EXPOSURE_OPTIONS = {
    "under": "Underexposed: too dark overall",
    "over": "Overexposed: too bright and washed out",
    "ok": "Well exposed",
    "face": "Only the face is in deep shadow; the rest is well exposed",
}
COLOUR_OPTIONS = {
    "green": "A strong green colour cast",
    "magenta": "A strong magenta colour cast",
    "ok": "Natural colours, no colour cast",
    "gray": "Black and white, no colour at all",
}
REGION_OPTIONS = {
    "face": "Only the face",
    "background": "Only the background (everything around the face)",
    "global": "Both the face and the background",
    "none": "Neither the face nor the background",
}
REGION_NAMES = {"face": "The face", "background": "The background (everything around the face)"}
STYLES = {
    "colour": ("Natural full colour", "The portrait is in natural full colour."),
    "gray": ("Black and white (grayscale)", "The portrait is in black and white."),
    "sepia": ("Sepia (brownish, vintage tone)", "The portrait has a sepia (brownish) tone."),
    "poster": (
        "Posterized (a few flat colour bands)",
        "The portrait is posterized into a few flat colour bands.",
    ),
}
STYLE_DESCRIPTIONS = {
    "colour": "The portrait is in natural full colour.",
    "gray": "The portrait is in black and white (grayscale, no colour at all).",
    "sepia": "The portrait has a sepia tone: brownish, vintage-looking, no other colours.",
}
POSITIONS = {
    "centre": ("Centred horizontally in the frame", "The face is centred horizontally."),
    "left": (
        "In the left part of the frame, fully visible",
        "The face is in the left part of the frame and fully visible.",
    ),
    "right": (
        "In the right part of the frame, fully visible",
        "The face is in the right part of the frame and fully visible.",
    ),
    "cut": (
        "Partly cut off by the left or right edge of the frame",
        "The face is partly cut off by the edge of the frame.",
    ),
}
POSITION_FRACTIONS = {"centre": 0.5, "left": 0.22, "right": 0.78}
CUT_SHARE = 0.4  # share of the face width that a "cut" crop leaves outside the frame
MULTI_QUESTION = (
    "Which of the following statements about this portrait are true? Select all that apply."
)


@dataclass(frozen=True)
class Source:
    """A shipped photo with its face box (x, y, w, h) and the flags judged when it was added."""

    file: str
    size: tuple[int, int]
    box: dg.Box
    partial_face: bool
    background_sharp: bool
    background_colourful: bool


@dataclass(frozen=True)
class Op:
    kind: str
    region: Region = "global"
    params: Params = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    """What a scene will show, before a source and strengths are drawn."""

    family: Literal["gt", "ga", "lt", "la"]
    ops: tuple[tuple[str, Region], ...]
    focus: str
    position: str = ""  # ga: where the crop puts the face
    subject: str = ""  # ga: "style" or "composition"


@dataclass(frozen=True)
class Scene:
    number: int
    plan: Plan
    source: Source
    ops: tuple[Op, ...]
    crop: dg.Box | None = None
    cut_side: str = ""

    def kinds_in(self, region: Region) -> set[str]:
        """Kinds that affect ``region`` ("face" or "background"); global ops affect both."""
        return {op.kind for op in self.ops if op.region in (region, "global")}

    def region_of(self, kind: str) -> str:
        regions = {op.region for op in self.ops if op.kind == kind}
        return regions.pop() if regions else "none"


@dataclass(frozen=True)
class Draft:
    """A question before option shuffling; for single/multi ``answer`` indexes ``options``."""

    type: QuestionType
    question: str
    answer: bool | str | list[int]
    options: list[str] | None = None
    subdimension: str = ""


# --- sources and geometry -------------------------------------------------------------------


def load_sources(directory: Path = SOURCES_DIR) -> list[Source]:
    """Read ``provenance.json``: no face detector is needed at run time."""
    provenance = json.loads((directory / "provenance.json").read_text(encoding="utf-8"))
    return [_source(entry) for entry in provenance["files"]]


def _source(entry: dict[str, Any]) -> Source:
    x, y, w, h = (int(v) for v in entry["box"])
    width, height = (int(v) for v in entry["size"])
    return Source(
        file=str(entry["file"]),
        size=(width, height),
        box=(x, y, w, h),
        partial_face=bool(entry["partial_face"]),
        background_sharp=bool(entry["background_sharp"]),
        background_colourful=bool(entry["background_colourful"]),
    )


def shift_box(box: dg.Box, crop: dg.Box | None) -> dg.Box:
    """``box`` in the coordinates of ``crop``, clipped to it."""
    if crop is None:
        return box
    x0, y0 = max(box[0], crop[0]), max(box[1], crop[1])
    x1 = min(box[0] + box[2], crop[0] + crop[2])
    y1 = min(box[1] + box[3], crop[1] + crop[3])
    return (x0 - crop[0], y0 - crop[1], max(x1 - x0, 0), max(y1 - y0, 0))


def grow_box(box: dg.Box, share: float, size: tuple[int, int]) -> dg.Box:
    """Grow ``box`` by ``share`` of its size on every side, clipped to ``size`` (w, h)."""
    x, y, w, h = box
    dx, dy = round(w * share), round(h * share)
    x0, y0 = max(x - dx, 0), max(y - dy, 0)
    x1, y1 = min(x + w + dx, size[0]), min(y + h + dy, size[1])
    return (x0, y0, x1 - x0, y1 - y0)


def composition_crop(source: Source, position: str, side: str = "left") -> dg.Box | None:
    """A crop placing the face centred, left, right or cut by the ``side`` edge; None if the
    photo has too little room around the face for it."""
    if position == "cut":
        return _cut_crop(source, side)
    width = source.size[0]
    x, _, w, _ = source.box
    centre, fraction = x + w / 2, POSITION_FRACTIONS[position]
    widest = min(centre / fraction, (width - centre) / (1 - fraction), width)
    # the whole face must fit with a 2 % margin; the face at most 40 % of the crop width
    narrowest = max(2.5 * w, (w / 2) / (min(fraction, 1 - fraction) - 0.02))
    if widest < narrowest:
        return None
    crop_w = int(widest)
    return _with_height(source, round(centre - fraction * crop_w), crop_w)


def _cut_crop(source: Source, side: str) -> dg.Box | None:
    width, _ = source.size
    x, _, w, _ = source.box
    if side == "left":
        x0 = round(x + CUT_SHARE * w)
        crop_w = min(width - x0, round(2.5 * w))
    else:
        crop_w = min(round(x + (1 - CUT_SHARE) * w), round(2.5 * w))
        x0 = round(x + (1 - CUT_SHARE) * w) - crop_w
    if crop_w < 1.5 * w:
        return None
    return _with_height(source, x0, crop_w)


def _with_height(source: Source, x0: int, crop_w: int) -> dg.Box | None:
    """Add a portrait-shaped height (1.25 x width at most) that keeps the face inside."""
    _, height = source.size
    _, y, _, h = source.box
    crop_h = min(height, round(1.25 * crop_w))
    y0 = min(max(round(y + h / 2 - 0.4 * crop_h), 0), height - crop_h)
    if y0 > y or y0 + crop_h < y + h:
        return None
    return (x0, y0, crop_w, crop_h)


# --- planning ---------------------------------------------------------------------------------


def scene_plans() -> list[Plan]:
    """The 60 scenes: 18 gt, 12 ga, 18 lt, 12 la (so 30 global, 30 local; 36 technical)."""
    return _gt_plans() + _ga_plans() + _lt_plans() + _la_plans()


def _gt_plans() -> list[Plan]:
    clean = [Plan("gt", (), focus) for focus in ("noise", "over", "green")]
    single = ["blur", "noise", "jpeg", "lowres", "under", "over", "green", "magenta", "blur"]
    combos = [
        ("blur", "noise"),
        ("under", "noise"),
        ("jpeg", "magenta"),
        ("over", "blur"),
        ("green", "blur", "noise"),
        ("lowres", "under"),
    ]
    singles = [Plan("gt", ((k, "global"),), k) for k in single]
    mixed = [Plan("gt", tuple((k, "global") for k in ks), ks[0]) for ks in combos]
    return clean + singles + mixed


def _ga_plans() -> list[Plan]:
    plans = []
    for index in range(12):
        position, style = list(POSITIONS)[index % 4], ("colour", "gray", "sepia")[index % 3]
        ops: tuple[tuple[str, Region], ...] = () if style == "colour" else ((style, "global"),)
        subject = "style" if index < 6 else "composition"
        plans.append(Plan("ga", ops, style, position=position, subject=subject))
    return plans


def _lt_plans() -> list[Plan]:
    regions: tuple[Region, ...] = ("face", "background", "global")
    singles = [Plan("lt", ((k, r),), k) for k in LOCAL_KINDS for r in regions]
    clean = [Plan("lt", (), "blur"), Plan("lt", (), "lowres")]
    pairs = [("blur", "noise"), ("noise", "blur"), ("lowres", "green"), ("green", "noise")]
    mixed = [Plan("lt", ((f, "face"), (b, "background")), f) for f, b in pairs]
    return singles + clean + mixed


def _la_plans() -> list[Plan]:
    light: list[Region] = ["face", "face", "background", "background", "background", "global"]
    gray: list[Region] = ["face", "face", "background", "background", "global"]
    plans = [Plan("la", (("shadow", r),), "lighting") for r in light]
    plans += [Plan("la", (("gray", r),), "style") for r in gray]
    return [*plans, Plan("la", (), "style")]


def draw_params(kind: str, rng: np.random.Generator) -> Params:
    """Random strength for ``kind`` within its clearly visible range (rounded, as recorded)."""
    if kind == "blur":
        return {"sigma": round(float(rng.uniform(*BLUR_SIGMA)), 1)}
    if kind == "noise":
        return {"sigma": float(round(rng.uniform(*NOISE_SIGMA)))}
    if kind == "jpeg":
        return {"quality": float(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1))}
    if kind == "lowres":
        return {"factor": float(rng.choice(LOWRES_FACTORS))}
    if kind == "under":
        return {"gamma": round(float(rng.uniform(*UNDER_GAMMA)), 2)}
    if kind == "over":
        return {"gamma": round(float(rng.uniform(*OVER_GAMMA)), 2), "gain": OVER_GAIN}
    if kind == "shadow":
        return {"gain": SHADOW_GAIN}
    return {}


def eligible(plan: Plan, source: Source) -> bool:
    """Sources whose natural look cannot contradict the plan's answers."""
    if plan.family == "lt" or (plan.family == "gt" and not plan.ops):
        return source.background_sharp  # "not blurred" must hold for the untouched regions
    if plan.family == "la" and plan.focus == "style":
        return source.background_colourful  # "in colour" must hold where no grayscale is applied
    if plan.family == "ga":
        return not source.partial_face
    return True


def pick_source(
    candidates: Sequence[Source], uses: Counter[str], rng: np.random.Generator
) -> Source:
    """The least used candidate (ties broken at random), so every photo is used evenly."""
    least = min(uses[s.file] for s in candidates)
    pool = [s for s in candidates if uses[s.file] == least]
    chosen = pool[int(rng.integers(len(pool)))]
    uses[chosen.file] += 1
    return chosen


def build_scene(
    number: int, plan: Plan, sources: Sequence[Source], uses: Counter[str], rng: np.random.Generator
) -> Scene:
    candidates = [s for s in sources if eligible(plan, s)]
    crop, side = None, ""
    if plan.family == "ga":
        side, candidates = _placeable(plan.position, candidates, rng)
    source = pick_source(candidates, uses, rng)
    if plan.family == "ga":
        crop = composition_crop(source, plan.position, side)
    ops = tuple(Op(kind, region, draw_params(kind, rng)) for kind, region in plan.ops)
    return Scene(number, plan, source, ops, crop, side if plan.position == "cut" else "")


def _placeable(
    position: str, candidates: Sequence[Source], rng: np.random.Generator
) -> tuple[str, list[Source]]:
    """A random cut side (if any) and the sources with room for that placement."""
    sides = ["left", "right"] if position == "cut" else ["left"]
    options = [
        (side, [s for s in candidates if composition_crop(s, position, side)]) for side in sides
    ]
    options = [(side, found) for side, found in options if found]
    if not options:
        raise ValueError(f"no source photo has room to place the face '{position}'")
    return options[int(rng.integers(len(options)))]


# --- rendering --------------------------------------------------------------------------------


def degrader(op: Op, rng: np.random.Generator) -> dg.Degrade:
    """The pixel function of ``op`` (``rng`` feeds the noise)."""
    p = op.params
    table: dict[str, dg.Degrade] = {
        "blur": lambda im: dg.gaussian_blur(im, p["sigma"]),
        "noise": lambda im: dg.gaussian_noise(im, p["sigma"], rng),
        "jpeg": lambda im: dg.jpeg_compression(im, int(p["quality"])),
        "lowres": lambda im: dg.low_resolution(im, p["factor"], upsample="nearest"),
        "under": lambda im: dg.exposure(im, p["gamma"]),
        "over": lambda im: dg.exposure(im, p["gamma"], gain=p["gain"]),
        "shadow": lambda im: dg.brightness(im, p["gain"]),
        "green": lambda im: dg.color_cast(im, "green"),
        "magenta": lambda im: dg.color_cast(im, "magenta"),
        "gray": dg.grayscale,
        "sepia": dg.sepia,
    }
    return table[op.kind]


def face_region(scene: Scene) -> dg.Box:
    """The region "face" that local edits use, in the scene image's coordinates."""
    width, height = scene.crop[2:] if scene.crop else scene.source.size
    return grow_box(shift_box(scene.source.box, scene.crop), FACE_GROW, (width, height))


def render(scene: Scene, pixels: dg.RGB, rng: np.random.Generator) -> dg.RGB:
    """Crop, then apply the scene's ops in a fixed physical order (JPEG last)."""
    if scene.crop is not None:
        x, y, w, h = scene.crop
        pixels = pixels[y : y + h, x : x + w].copy()
    region = face_region(scene)
    height, width = pixels.shape[:2]
    mask = dg.box_mask((height, width), region, feather=FEATHER * region[2])
    for op in sorted(scene.ops, key=lambda o: RENDER_ORDER.index(o.kind)):
        degrade = degrader(op, rng)
        if op.region == "global":
            pixels = degrade(pixels)
        else:
            pixels = dg.apply_masked(pixels, degrade, mask, outside=op.region == "background")
    return pixels


# --- questions --------------------------------------------------------------------------------


def confusable(kind: str, others: Iterable[str]) -> bool:
    return any(frozenset((kind, other)) in CONFUSABLE for other in others)


def sample(rng: np.random.Generator, items: Sequence[str], count: int) -> list[str]:
    picks = rng.choice(len(items), size=min(count, len(items)), replace=False)
    return [items[int(i)] for i in picks]


def single(question: str, correct: str, distractors: Sequence[str], sub: str) -> Draft:
    return Draft("single", question, [0], [correct, *distractors[:3]], sub)


def statements_draft(
    pool: Sequence[tuple[str, bool]], rng: np.random.Generator, sub: str, first: str = ""
) -> Draft:
    """Multi-choice over four statements from ``pool``: ``first`` (or a random true one), then
    three at random, so one to four are true."""
    trues = [text for text, truth in pool if truth]
    lead = first or trues[int(rng.integers(len(trues)))]
    rest = sample(rng, [text for text, _ in pool if text != lead], 3)
    options = [lead, *rest]
    truth = dict(pool)
    return Draft(
        "multi", MULTI_QUESTION, [i for i, t in enumerate(options) if truth[t]], options, sub
    )


def tf_draft(
    pool: Sequence[tuple[str, bool]], want: bool, rng: np.random.Generator, sub: str
) -> Draft:
    texts = [text for text, truth in pool if truth == want]
    return Draft("tf", texts[int(rng.integers(len(texts)))], want, None, sub)


def gt_drafts(scene: Scene, rng: np.random.Generator, want: bool) -> list[Draft]:
    present = [op.kind for op in scene.ops]
    absent = [k for k in GLOBAL_KINDS if k not in present and not confusable(k, present)]
    focus, sub = scene.plan.focus, KINDS[scene.plan.focus].subdimension
    return [
        _gt_single(scene, present, absent, rng),
        _gt_multi(present, absent, rng, sub),
        _gt_tf(present, absent, focus, want, rng, sub),
        _gt_open(scene, sub),
    ]


def _gt_single(
    scene: Scene, present: list[str], absent: list[str], rng: np.random.Generator
) -> Draft:
    focus = scene.plan.focus
    sub = KINDS[focus].subdimension
    if sub in ("exposure", "color"):
        choices = EXPOSURE_OPTIONS if sub == "exposure" else COLOUR_OPTIONS
        key = next((k for k in present if k in choices), "ok")
        others = [text for k, text in choices.items() if k != key]
        return single(f"How {_topic(sub)} in this portrait?", choices[key], others, sub)
    labels = [KINDS[k].label for k in absent]
    if not present:
        return single(_MAIN_PROBLEM, NO_PROBLEM, sample(rng, labels, 3), sub)
    if len(present) == 1:
        distractors = sample(rng, [*labels, NO_PROBLEM], 3)
        return single(_MAIN_PROBLEM, KINDS[focus].label, distractors, sub)
    question = "Which of the following distortions is visible in this portrait?"
    return single(question, KINDS[focus].label, sample(rng, [*labels, NO_PROBLEM], 3), sub)


_MAIN_PROBLEM = "Which of the following best describes the main quality problem of this portrait?"


def _topic(sub: str) -> str:
    return "is the exposure" if sub == "exposure" else "are the colours"


def _gt_multi(present: list[str], absent: list[str], rng: np.random.Generator, sub: str) -> Draft:
    question = (
        "Which of the following distortions are present in this portrait? Select all that apply."
    )
    if not present:
        options = [NO_PROBLEM, *(KINDS[k].label for k in sample(rng, absent, 3))]
        return Draft("multi", question, [0], options, sub)
    fillers = sample(rng, [*(KINDS[k].label for k in absent), NO_PROBLEM], 4 - len(present))
    options = [KINDS[k].label for k in present] + fillers
    return Draft("multi", question, list(range(len(present))), options, sub)


def _gt_tf(
    present: list[str],
    absent: list[str],
    focus: str,
    want: bool,
    rng: np.random.Generator,
    sub: str,
) -> Draft:
    if want:
        text = KINDS[focus].statement if present else CLEAN_STATEMENT
    elif not present:
        text = KINDS[focus].statement
    else:
        text = sample(rng, [*(KINDS[k].statement for k in absent), CLEAN_STATEMENT], 1)[0]
    return Draft("tf", text, want, None, sub)


def _gt_open(scene: Scene, sub: str) -> Draft:
    question = "Describe the quality problems of this portrait."
    if not scene.ops:
        return Draft("open", question, CLEAN_DESCRIPTION, None, sub)
    damaged = [KINDS[op.kind].describe(op.params) for op in scene.ops]
    spoiled = {KINDS[op.kind].aspect for op in scene.ops}
    intact = [text for aspect, text in GOOD_ASPECT.items() if aspect not in spoiled]
    answer = f"The whole portrait is {damaged[0]}."
    answer += "".join(f" It is also {text}." for text in damaged[1:])
    if intact:
        answer += f" Otherwise it is {_join(intact)}."
    return Draft("open", question, answer, None, sub)


def _join(parts: Sequence[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def ga_drafts(scene: Scene, rng: np.random.Generator, want: bool) -> list[Draft]:
    style, position = scene.plan.focus, scene.plan.position
    by_style = scene.plan.subject == "style"
    sub = "style" if by_style else "composition"
    pool_style = [(text, key == style) for key, (_, text) in STYLES.items()]
    pool_place = [(text, key == position) for key, (_, text) in POSITIONS.items()]
    focus_pool = pool_style if by_style else pool_place
    if by_style:
        first = single(
            "What is the colour style of this portrait?",
            STYLES[style][0],
            [label for key, (label, _) in STYLES.items() if key != style],
            sub,
        )
    else:
        first = single(
            "Where is the face placed in the frame (left and right as seen by the viewer)?",
            POSITIONS[position][0],
            [label for key, (label, _) in POSITIONS.items() if key != position],
            sub,
        )
    lead = next(text for text, truth in focus_pool if truth)
    question = "Describe the colour style of this portrait and where the face is placed."
    reference = f"{STYLE_DESCRIPTIONS[style]} {_placement(scene)}"
    return [
        first,
        statements_draft(pool_style + pool_place, rng, sub, first=lead),
        tf_draft(focus_pool, want, rng, sub),
        Draft("open", question, reference, None, sub),
    ]


def _placement(scene: Scene) -> str:
    position = scene.plan.position
    if position == "cut":
        share = round(CUT_SHARE * 100)
        return (
            f"The face is partly cut off by the {scene.cut_side} edge of the frame "
            f"(about {share} % of its width is outside the picture)."
        )
    if position == "centre":
        return "The face is centred horizontally, fully visible."
    other = "right" if position == "left" else "left"
    return (
        f"The face is in the {position} part of the frame, fully visible, "
        f"with open space on the {other}."
    )


def lt_drafts(scene: Scene, rng: np.random.Generator, want: bool) -> list[Draft]:
    focus = scene.plan.focus
    sub = KINDS[focus].subdimension
    region = scene.region_of(focus)
    pool = _lt_pool(scene)
    question = f"Which region of this portrait {KINDS[focus].predicate}?"
    others = [text for key, text in REGION_OPTIONS.items() if key != region]
    reference = (
        f"The face is {_region_state(scene, 'face')}, while the background (everything around "
        f"the face) is {_region_state(scene, 'background')}."
    )
    if region == "global":
        reference = f"Both the face and the background are {_region_state(scene, 'face')}."
    return [
        single(question, REGION_OPTIONS[region], others, sub),
        statements_draft(pool, rng, sub),
        tf_draft(pool, want, rng, sub),
        Draft(
            "open",
            "Compare the image quality of the face and the background.",
            reference,
            None,
            sub,
        ),
    ]


def _lt_pool(scene: Scene) -> list[tuple[str, bool]]:
    """Statements "<region> <predicate>" except those a look-alike in that region would blur."""
    pool = []
    regions: tuple[Region, ...] = ("face", "background")
    for region in regions:
        here = scene.kinds_in(region)
        for kind in LOCAL_KINDS:
            if kind in here or not confusable(kind, here):
                pool.append((f"{REGION_NAMES[region]} {KINDS[kind].predicate}.", kind in here))
        pool.append((f"{REGION_NAMES[region]} is free of distortions.", not here))
    return pool


def _region_state(scene: Scene, region: Region) -> str:
    ops = [op for op in scene.ops if op.region in (region, "global")]
    if not ops:
        return "sharp and free of distortions"
    return _join([KINDS[op.kind].describe(op.params) for op in ops])


def la_drafts(scene: Scene, rng: np.random.Generator, want: bool) -> list[Draft]:
    lighting = scene.plan.focus == "lighting"
    region = scene.ops[0].region if scene.ops else "none"
    pool = _shadow_pool(region) if lighting else _gray_pool(region)
    if lighting:
        first = single(
            "Which part of this portrait is in deep shadow?",
            _SHADOW_OPTIONS[region],
            [t for k, t in _SHADOW_OPTIONS.items() if k != region],
            "lighting",
        )
        question, reference = "Describe the lighting of this portrait.", _SHADOW_TEXT[region]
    else:
        first = single(
            "Which part of this portrait is shown in black and white (without colour)?",
            REGION_OPTIONS[region],
            [t for k, t in REGION_OPTIONS.items() if k != region],
            "style",
        )
        question = "Describe how colour is used in the face and in the background of this portrait."
        reference = _GRAY_TEXT[region]
    sub = first.subdimension
    return [
        first,
        statements_draft(pool, rng, sub),
        tf_draft(pool, want, rng, sub),
        Draft("open", question, reference, None, sub),
    ]


_SHADOW_OPTIONS = {
    "face": "Only the face",
    "background": "Only the background (everything around the face)",
    "global": "The whole image",
    "none": "No part: the lighting is balanced",
}
_SHADOW_TEXT = {
    "face": (
        "The face is in deep shadow (darkened to a quarter of its brightness) while the background "
        "(everything around the face) keeps its normal brightness."
    ),
    "background": (
        "The background (everything around the face) is darkened into deep shadow (a quarter of "
        "its brightness) while the face keeps its normal lighting, like a spotlight on the face."
    ),
    "global": (
        "The whole image is evenly darkened into deep shadow (a quarter of its brightness); the "
        "face and the background are equally dim."
    ),
}
_GRAY_TEXT = {
    "face": "The face is in black and white while the background keeps its natural colours.",
    "background": (
        "The background (everything around the face) is in black and white while the face keeps "
        "its natural colours, a colour-splash effect."
    ),
    "global": "The whole portrait, face and background, is in black and white.",
    "none": "Both the face and the background are in natural colour; nothing is black and white.",
}


def _shadow_pool(region: str) -> list[tuple[str, bool]]:
    bg = REGION_NAMES["background"]
    return [
        ("The face is in deep shadow.", region in ("face", "global")),
        (f"{bg} is in deep shadow.", region in ("background", "global")),
        ("The face is lit more brightly than everything around it.", region == "background"),
        ("The whole image is evenly dark.", region == "global"),
        ("The face is in black and white.", False),
        (f"{bg} is in black and white.", False),
    ]


def _gray_pool(region: str) -> list[tuple[str, bool]]:
    bg = REGION_NAMES["background"]
    face_gray, bg_gray = region in ("face", "global"), region in ("background", "global")
    return [
        ("The face is in black and white.", face_gray),
        (f"{bg} is in black and white.", bg_gray),
        ("The face is in natural colour.", not face_gray),
        (f"{bg} is in natural colour.", not bg_gray),
        ("The face has a sepia (brownish) tone.", False),
        (f"{bg} has a sepia (brownish) tone.", False),
    ]


DRAFTERS: dict[str, Callable[[Scene, np.random.Generator, bool], list[Draft]]] = {
    "gt": gt_drafts,
    "ga": ga_drafts,
    "lt": lt_drafts,
    "la": la_drafts,
}
FAMILY_AXES = {
    "gt": ("global", "technical"),
    "ga": ("global", "aesthetics"),
    "lt": ("local", "technical"),
    "la": ("local", "aesthetics"),
}


# --- items ------------------------------------------------------------------------------------


def arrange(
    draft: Draft, target: int, rng: np.random.Generator
) -> tuple[list[str] | None, str | list[str] | bool]:
    """Shuffle options: single puts the correct one at ``target``; multi shuffles freely."""
    if draft.options is None:
        assert not isinstance(draft.answer, list)
        return None, draft.answer
    assert isinstance(draft.answer, list)
    options = draft.options
    if draft.type == "single":
        rest = [options[int(i) + 1] for i in rng.permutation(len(options) - 1)]
        rest.insert(target, options[0])
        return rest, LETTERS[target]
    order = [int(i) for i in rng.permutation(len(options))]
    letters = sorted(LETTERS[order.index(i)] for i in draft.answer)
    return [options[i] for i in order], letters


def item_record(
    number: int, scene: Scene, draft: Draft, image: str, target: int, rng: np.random.Generator
) -> dict[str, Any]:
    options, answer = arrange(draft, target, rng)
    scope, dimension = FAMILY_AXES[scene.plan.family]
    record: dict[str, Any] = {
        "id": f"{ID_PREFIX}-{number:04d}",
        "image": image,
        "question": draft.question,
        "type": draft.type,
    }
    if options is not None:
        record["options"] = options
    record |= {
        "answer": answer,
        "scope": scope,
        "dimension": dimension,
        "subdimension": draft.subdimension,
        "source": "synthetic-distortion" if scene.ops else "natural",
        "degradations": [
            {"name": o.kind, "region": o.region, "params": o.params} for o in scene.ops
        ],
        "source_image": scene.source.file,
        "crop": list(scene.crop) if scene.crop else None,
        "face_box": list(shift_box(scene.source.box, scene.crop)),
        "face_region": list(face_region(scene)),
    }
    QAItem.model_validate(record)  # fail here, not in a user's run
    return record


def balanced(rng: np.random.Generator, values: Sequence[Any], count: int) -> list[Any]:
    """``count`` values cycling through ``values``, shuffled: equal shares, random order."""
    return [values[int(i) % len(values)] for i in rng.permutation(count)]


def generate(out: Path, seed: int = 0, sources_dir: Path = SOURCES_DIR) -> list[dict[str, Any]]:
    """Write ``out/images/*.jpg`` and ``out/items.jsonl``; return the item records."""
    master = np.random.default_rng(seed)
    plans = [scene_plans()[int(i)] for i in master.permutation(len(scene_plans()))]
    tf_wants = balanced(master, [True, False], len(plans))
    targets = balanced(master, range(4), len(plans))
    sources, uses = load_sources(sources_dir), Counter[str]()
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    for stale in images.glob(f"{ID_PREFIX}-img-*.jpg"):
        stale.unlink()
    records: list[dict[str, Any]] = []
    for number, plan in enumerate(plans, start=1):
        rng = np.random.default_rng([seed, number])
        scene = build_scene(number, plan, sources, uses, rng)
        name = f"images/{ID_PREFIX}-img-{number:03d}.jpg"
        _save(scene, sources_dir, out / name, rng)
        for draft in DRAFTERS[plan.family](scene, rng, bool(tf_wants[number - 1])):
            target = int(targets[number - 1])
            records.append(item_record(len(records) + 1, scene, draft, name, target, rng))
    _write_jsonl(out / "items.jsonl", records)
    return records


def _save(scene: Scene, sources_dir: Path, path: Path, rng: np.random.Generator) -> None:
    with Image.open(sources_dir / scene.source.file) as photo:
        pixels = np.asarray(photo.convert("RGB"), dtype=np.uint8)
    Image.fromarray(render(scene, pixels, rng)).save(path, format="JPEG", quality=SAVE_QUALITY)


def _write_jsonl(path: Path, records: Sequence[dict[str, Any]]) -> None:
    lines = [json.dumps(record, ensure_ascii=False) for record in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--out", type=Path, default=QA_DIR, help="output folder (default: %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--sources", type=Path, default=SOURCES_DIR, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    records = generate(args.out, args.seed, args.sources)
    counts = Counter(str(r["type"]) for r in records)
    print(
        f"wrote {len(records)} items to {args.out / 'items.jsonl'}: {dict(sorted(counts.items()))}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
