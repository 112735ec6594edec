"""The mix-degradation generator: deterministic, truthful ground truth, shipped data in sync."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image
from pydantic import ValidationError
from scipy import ndimage

from fiqabench.errors import UserError
from fiqabench.tasks import degradations as dg
from fiqabench.tasks import mixdeg as md

FloatArray = npt.NDArray[np.float64]
SOURCES = ("biden__biden.jpg", "hopper__grace_hopper.jpg", "obama__obama.jpg")
MAX_SIDE = 192


def copy_sources(folder: Path, names: Sequence[str] = SOURCES) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(md.MINI_SOURCES / name, folder / name)
    return folder


def files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def pixels(root: Path, item: md.MixdegItem) -> dg.RGB:
    with Image.open(root / item.image) as image:
        return np.asarray(image, dtype=np.uint8).copy()


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> md.MixdegManifest:
    src = copy_sources(tmp_path_factory.mktemp("src"))
    return md.generate_mixdeg(src, tmp_path_factory.mktemp("bench"), variants=4, max_side=MAX_SIDE)


@pytest.fixture(scope="module")
def clean(bench: md.MixdegManifest) -> dict[str, dg.RGB]:
    return {
        item.reference: pixels(bench.root, item) for item in bench.items if item.level == "clean"
    }


# --- measurements of each artifact, independent of the generator --------------------------------


def luma(image: dg.RGB) -> FloatArray:
    result: FloatArray = image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return result


def laplacian_variance(image: dg.RGB) -> float:
    return float(ndimage.laplace(luma(image)).var())


def block_means(values: FloatArray, block: int = 8) -> FloatArray:
    rows, cols = values.shape[0] // block, values.shape[1] // block
    trimmed = values[: rows * block, : cols * block]
    means: FloatArray = trimmed.reshape(rows, block, cols, block).mean(axis=(1, 3))
    return means


def smooth_blocks(reference: dg.RGB) -> npt.NDArray[np.bool_]:
    """The quarter of 8x8 blocks with the least detail in the clean reference."""
    detail = block_means(np.abs(ndimage.laplace(luma(reference))))
    mask: npt.NDArray[np.bool_] = detail <= np.quantile(detail, 0.25)
    return mask


def smooth_residual(image: dg.RGB, smooth: npt.NDArray[np.bool_]) -> float:
    """High-frequency residual (mean |Laplacian|) inside the smooth blocks: noise shows there."""
    return float(block_means(np.abs(ndimage.laplace(luma(image))))[smooth].mean())


def blockiness(image: dg.RGB) -> float:
    """Mean jump across 8x8 block borders over the mean jump inside blocks (about 1: no grid)."""
    ratios = []
    for jumps in (np.abs(np.diff(luma(image), axis=1)), np.abs(np.diff(luma(image), axis=0)).T):
        inside = np.delete(jumps, np.s_[7::8], axis=1)
        ratios.append(jumps[:, 7::8].mean() / inside.mean())
    return float(np.mean(ratios))


def high_frequency_share(image: dg.RGB, cutoff: float) -> float:
    """Share of spectral power above ``cutoff`` cycles per pixel (either axis)."""
    gray = luma(image)
    power = np.abs(np.fft.fft2(gray - gray.mean())) ** 2
    fy = np.abs(np.fft.fftfreq(gray.shape[0]))[:, None]
    fx = np.abs(np.fft.fftfreq(gray.shape[1]))[None, :]
    return float(power[np.maximum(fy, fx) > cutoff].sum() / power.sum())


def mean_luma(image: dg.RGB) -> float:
    return float(luma(image).mean())


def assert_present(artifact: str, params: md.Params, before: dg.RGB, after: dg.RGB) -> None:
    """The artifact measurably changed ``before`` into ``after`` the way it should."""
    if artifact == "blur":
        assert laplacian_variance(after) < 0.8 * laplacian_variance(before)
    elif artifact == "noise":
        smooth = smooth_blocks(before)
        assert smooth_residual(after, smooth) > 1.3 * smooth_residual(before, smooth)
    elif artifact == "low_resolution":
        nyquist = 0.5 / float(params["factor"])  # of the downscaled image: all above is lost
        assert high_frequency_share(after, nyquist) < 0.8 * high_frequency_share(before, nyquist)
    elif artifact == "compression":
        assert blockiness(after) > 1.05 * blockiness(before)
    else:
        shift = mean_luma(after) - mean_luma(before)
        assert shift < -5 if params["direction"] == "under" else shift > 5


def replay(image: dg.RGB, applied: Sequence[md.AppliedArtifact]) -> dg.RGB:
    """Apply the recorded artifacts with the degradation functions directly, in recorded order."""
    for entry in applied:
        params = entry.params
        if entry.artifact == "blur":
            image = dg.gaussian_blur(image, float(params["sigma"]))
        elif entry.artifact == "noise":
            rng = np.random.default_rng(int(params["seed"]))
            image = dg.gaussian_noise(image, float(params["sigma"]), rng)
        elif entry.artifact == "low_resolution":
            image = dg.low_resolution(image, float(params["factor"]), upsample="bicubic")
        elif entry.artifact == "compression":
            image = dg.jpeg_compression(image, int(params["quality"]))
        else:
            image = dg.exposure(image, float(params["gamma"]))
    return image


# --- tests ------------------------------------------------------------------------------------


def test_enums_and_flag_keys_are_exact() -> None:
    assert md.ARTIFACTS == ("blur", "noise", "low_resolution", "compression", "poor_lighting")
    assert md.FLAG_KEYS == {
        "blur": "has_blur",
        "noise": "has_noise",
        "low_resolution": "has_low_resolution",
        "compression": "has_compression",
        "poor_lighting": "has_poor_lighting",
    }
    assert sorted(md.APPLY_ORDER) == sorted(md.ARTIFACTS)


def test_counts_and_layout(bench: md.MixdegManifest) -> None:
    assert bench.counts == {
        "references": 3,
        "clean": 3,
        "mixed": 3 * 4,
        "ladder": 3 * 6 * 5,
        "images": 3 * (1 + 4 + 30),
    }
    on_disk = {p.relative_to(bench.root).as_posix() for p in bench.root.rglob("*.png")}
    assert on_disk == {item.image for item in bench.items}
    assert all(item.id == item.image for item in bench.items)
    assert all(Image.open(bench.root / item.image).format == "PNG" for item in bench.items)
    assert md.load_manifest(bench.root).items == bench.items
    generation = json.loads((bench.root / md.GENERATION_FILE).read_text())
    assert generation["counts"] == bench.counts
    assert generation["seed"] == 0 and generation["apply_order"] == list(md.APPLY_ORDER)


def test_images_are_normalised_to_max_side(
    bench: md.MixdegManifest, clean: dict[str, dg.RGB]
) -> None:
    assert all(max(image.shape[:2]) == MAX_SIDE for image in clean.values())


def test_clean_images_have_no_ground_truth(bench: md.MixdegManifest) -> None:
    for item in bench.items:
        if item.level == "clean":
            assert item.applied == [] and item.hard is None and item.ladder is None
            assert set(item.artifacts.values()) == {0}
            assert not any(item.flags().values())


def test_mixed_images_have_three_distinct_artifacts_one_hard(bench: md.MixdegManifest) -> None:
    mixed = [item for item in bench.items if item.level == "mixed"]
    for item in mixed:
        names = [entry.artifact for entry in item.applied]
        assert len(set(names)) == 3
        assert [e.strength for e in item.applied].count("hard") == 1
        assert item.hard == next(e.artifact for e in item.applied if e.strength == "hard")
        assert {a for a, flag in item.artifacts.items() if flag} == set(names)
        assert list(item.artifacts.values()).count(1) == 3
        assert item.flags() == {md.FLAG_KEYS[a]: a in names for a in md.ARTIFACTS}
        assert names == [a for a in md.APPLY_ORDER if a in names]  # physical order
    assert len({tuple(item.artifacts.values()) for item in mixed}) > 1  # the draw varies


def test_drawn_strengths_lie_in_the_documented_ranges(bench: md.MixdegManifest) -> None:
    scale = max(MAX_SIDE / md.REFERENCE_SIDE, md.MIN_BLUR_SCALE)
    for item in bench.items:
        for entry in item.applied:
            if entry.strength == "ladder":
                continue
            params = entry.params
            if entry.artifact == "poor_lighting":
                direction = params["direction"]
                assert direction in ("under", "over")
                low, high = md.EXPOSURE_GAMMA[direction][entry.strength]  # type: ignore[index]
                assert low <= float(params["gamma"]) <= high
                continue
            low, high = md.STRENGTHS[entry.artifact][entry.strength]
            key = {"blur": "sigma_at_512px", "noise": "sigma", "low_resolution": "factor"}
            assert low <= float(params[key.get(entry.artifact, "quality")]) <= high
            if entry.artifact == "blur":
                assert params["sigma"] == round(float(params["sigma_at_512px"]) * scale, 3)


def test_manifest_replays_to_the_exact_pixels(
    bench: md.MixdegManifest, clean: dict[str, dg.RGB]
) -> None:
    """The recorded artifacts, and nothing else, made every image."""
    for item in bench.items:
        expected = replay(clean[item.reference], item.applied)
        assert np.array_equal(pixels(bench.root, item), expected), item.id


def test_each_applied_artifact_is_measurable_against_the_clean_reference(
    bench: md.MixdegManifest, clean: dict[str, dg.RGB]
) -> None:
    for item in bench.items:
        reference = clean[item.reference]
        for entry in item.applied:
            alone = md.apply_artifact(reference, entry.artifact, entry.params)
            assert_present(entry.artifact, entry.params, reference, alone)
        if item.level == "ladder":  # a ladder image is the artifact alone: measure the file
            entry = item.applied[0]
            assert_present(entry.artifact, entry.params, reference, pixels(bench.root, item))


def test_ladders_strictly_increase_in_strength(
    bench: md.MixdegManifest, clean: dict[str, dg.RGB]
) -> None:
    severity = {  # a measurement that grows with each artifact's strength
        "blur": lambda image: -laplacian_variance(image),
        "noise": lambda image: float(np.abs(ndimage.laplace(luma(image))).mean()),
        "low_resolution": lambda image: -high_frequency_share(image, 1 / 16),
        "compression": blockiness,
        "under": lambda image: -mean_luma(image),
        "over": mean_luma,
    }
    for reference, image in clean.items():
        for ladder in md.LADDERS:
            steps = [
                item
                for item in bench.items
                if item.reference == reference
                and item.ladder is not None
                and (item.ladder.artifact, item.ladder.direction)
                == (ladder.artifact, ladder.direction)
            ]
            assert [item.ladder.step for item in steps if item.ladder] == [1, 2, 3, 4, 5]
            assert [item.ladder.value for item in steps if item.ladder] == list(ladder.values)
            measure = severity[ladder.direction or ladder.artifact]
            measured = [measure(image)] + [measure(pixels(bench.root, item)) for item in steps]
            assert all(np.diff(measured) > 0), (reference, ladder.name, measured)


def test_ladder_values_span_mild_to_hard() -> None:
    for ladder in md.LADDERS:
        if ladder.artifact == "poor_lighting":
            assert ladder.direction is not None
            ranges = md.EXPOSURE_GAMMA[ladder.direction]
        else:
            ranges = md.STRENGTHS[ladder.artifact]
        assert len(ladder.values) == 5 and len(set(ladder.values)) == 5
        mild_end = {ranges["mild"][0], ranges["mild"][1]}
        hard_end = {ranges["hard"][0], ranges["hard"][1]}
        assert ladder.values[0] in mild_end and ladder.values[-1] in hard_end, ladder.name
        assert list(ladder.values) in (sorted(ladder.values), sorted(ladder.values, reverse=True))


def test_generation_is_byte_identical(tmp_path: Path) -> None:
    src = copy_sources(tmp_path / "src")
    first = md.generate_mixdeg(src, tmp_path / "a", seed=7, variants=2, max_side=96)
    md.generate_mixdeg(src, tmp_path / "b", seed=7, variants=2, max_side=96)
    assert files(tmp_path / "a") == files(tmp_path / "b")
    assert len(files(tmp_path / "a")) == first.counts["images"] + 2
    other_seed = md.generate_mixdeg(src, tmp_path / "c", seed=8, variants=2, max_side=96)
    assert [i.applied for i in other_seed.items] != [i.applied for i in first.items]


def test_adding_a_reference_changes_no_other(tmp_path: Path) -> None:
    md.generate_mixdeg(copy_sources(tmp_path / "two", SOURCES[:2]), tmp_path / "a", max_side=64)
    md.generate_mixdeg(copy_sources(tmp_path / "three", SOURCES), tmp_path / "b", max_side=64)
    fewer, more = files(tmp_path / "a"), files(tmp_path / "b")
    images = [name for name in fewer if name.endswith(".png")]
    assert all(fewer[name] == more[name] for name in images)
    manifest = (tmp_path / "a" / md.MANIFEST_FILE).read_text().splitlines()
    assert set(manifest) < set((tmp_path / "b" / md.MANIFEST_FILE).read_text().splitlines())


def test_regenerating_replaces_an_earlier_output(tmp_path: Path) -> None:
    src = copy_sources(tmp_path / "faces", SOURCES[:1])
    out = src / "bench"  # inside the source folder: its PNGs must not become sources
    md.generate_mixdeg(src, out, variants=2, max_side=64)
    again = md.generate_mixdeg(src, out, variants=1, ladders=False, max_side=64)
    assert again.counts == {"references": 1, "clean": 1, "mixed": 1, "ladder": 0, "images": 2}
    assert sorted(p.name for p in out.rglob("*.png")) == ["clean.png", "mixed_1.png"]


def test_references_in_subfolders_keep_their_path(tmp_path: Path) -> None:
    src = tmp_path / "faces"
    copy_sources(src / "a", SOURCES[:1])
    copy_sources(src / "b", SOURCES[:1])
    result = md.generate_mixdeg(src, tmp_path / "out", variants=0, ladders=False, max_side=32)
    assert [item.image for item in result.items] == [
        "images/a/biden__biden/clean.png",
        "images/b/biden__biden/clean.png",
    ]
    assert result.items[0].reference == "a/biden__biden.jpg"


def test_shipped_mini_data_validates_and_matches_regeneration(tmp_path: Path) -> None:
    shipped = md.load_manifest(md.MINI_DIR)
    assert shipped.counts == {
        "references": 9,
        "clean": 9,
        "mixed": 9 * md.MINI_VARIANTS,
        "ladder": md.MINI_LADDER_REFERENCES * 6 * 5,
        "images": 9 * (1 + md.MINI_VARIANTS) + md.MINI_LADDER_REFERENCES * 30,
    }
    shipped_files = files(md.MINI_DIR)
    expected = {item.image for item in shipped.items} | {md.MANIFEST_FILE, md.GENERATION_FILE}
    assert set(shipped_files) == expected
    assert sum(len(content) for content in shipped_files.values()) < 4_000_000
    fresh = md.build_mini_degradation(tmp_path / "mixdeg")
    for name in (md.MANIFEST_FILE, md.GENERATION_FILE):
        assert (tmp_path / "mixdeg" / name).read_bytes() == shipped_files[name]
    for item in shipped.items:
        difference = np.abs(
            pixels(md.MINI_DIR, item).astype(np.int16) - pixels(fresh.root, item).astype(np.int16)
        )
        if any(entry.artifact == "compression" for entry in item.applied):
            assert difference.mean() < 1.0, item.id  # JPEG codecs may round differently
        else:
            assert not difference.any(), item.id


def test_item_validation_rejects_inconsistent_ground_truth() -> None:
    line = json.loads((md.MINI_DIR / md.MANIFEST_FILE).read_text().splitlines()[1])
    assert line["level"] == "mixed"
    md.MixdegItem.model_validate(line)
    flipped = {name: 1 - flag for name, flag in line["artifacts"].items()}
    for change in (
        {"artifacts": flipped},
        {"artifacts": {**line["artifacts"], "compresion": 0}},
        {"hard": None},
        {"applied": line["applied"][:2]},
        {"level": "clean"},
    ):
        with pytest.raises(ValidationError):
            md.MixdegItem.model_validate({**line, **change})


def test_a_bad_manifest_line_is_reported_with_its_number(tmp_path: Path) -> None:
    lines = (md.MINI_DIR / md.MANIFEST_FILE).read_text().splitlines()
    broken = json.loads(lines[1]) | {"hard": "jpeg"}
    (tmp_path / md.MANIFEST_FILE).write_text("\n".join([lines[0], json.dumps(broken)]) + "\n")
    with pytest.raises(UserError, match=r"manifest.jsonl:2: hard"):
        md.load_manifest(tmp_path)


def test_missing_source_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"nowhere: source folder of clean face images not found"):
        md.generate_mixdeg(tmp_path / "nowhere", tmp_path / "out")


def test_source_folder_without_images_is_named(tmp_path: Path) -> None:
    (tmp_path / "faces").mkdir()
    (tmp_path / "faces" / "notes.txt").write_text("no faces here")
    with pytest.raises(UserError, match=r"faces: no face images \(.jpeg, .jpg, .png, .webp\)"):
        md.generate_mixdeg(tmp_path / "faces", tmp_path / "out")


def test_unreadable_image_is_named(tmp_path: Path) -> None:
    src = copy_sources(tmp_path / "faces", SOURCES[:1])
    (src / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(UserError, match=r"broken\.jpg: not an image"):
        md.generate_mixdeg(src, tmp_path / "out")


def test_clashing_names_are_refused(tmp_path: Path) -> None:
    src = copy_sources(tmp_path / "faces", SOURCES[:1])
    Image.open(src / SOURCES[0]).save(src / "biden__biden.png")
    with pytest.raises(UserError, match=r"biden__biden\.jpg and biden__biden\.png share a name"):
        md.generate_mixdeg(src, tmp_path / "out")


def test_a_foreign_output_folder_is_left_alone(tmp_path: Path) -> None:
    src = copy_sources(tmp_path / "faces", SOURCES[:1])
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(UserError, match="not empty and holds no earlier mix-degradation output"):
        md.generate_mixdeg(src, tmp_path / "out")
    with pytest.raises(UserError, match="must not contain the source folder"):
        md.generate_mixdeg(src, tmp_path)
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"seed": -1}, "seed must be >= 0"),
        ({"variants": -1}, "variants must be >= 0"),
        ({"max_side": 8}, "max_side must be at least 16"),
    ],
)
def test_bad_settings_are_user_errors(
    tmp_path: Path, setting: dict[str, int], message: str
) -> None:
    with pytest.raises(UserError, match=message):
        md.generate_mixdeg(tmp_path, tmp_path / "out", **setting)  # type: ignore[arg-type]


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = copy_sources(tmp_path / "faces", SOURCES[:1])
    out = tmp_path / "out"
    args = ["--src", str(src), "--out", str(out), "--variants", "2", "--max-side", "64"]
    assert md.main([*args, "--no-ladders", "--seed", "3"]) == 0
    assert "1 clean, 2 mixed, 0 ladder" in capsys.readouterr().out
    assert json.loads((out / md.GENERATION_FILE).read_text())["seed"] == 3
    assert md.main(["--src", str(tmp_path / "nowhere"), "--out", str(out)]) == 2
    assert "error: " in capsys.readouterr().err
    with pytest.raises(SystemExit):
        md.main(["--out", str(out)])
