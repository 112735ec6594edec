from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fiqabench.benchmark.comparisons import (
    UNNAMED_MODEL,
    Comparison,
    Comparisons,
    load_embedding_dir,
    read_comparisons_csv,
    read_lfw_pairs,
    save_embedding_dir,
    similarities_from_embeddings,
    write_comparisons_csv,
)
from fiqabench.errors import UserError


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def sample() -> Comparisons:
    return Comparisons.build(
        ["p/a.jpg", "p/a.jpg", "q/c.png"],
        ["p/b.jpg", "q/c.png", "r/d.png"],
        [True, False, False],
        {"sface": [0.71, 0.1 / 3, -1.0], "arc.v2": [0.9, 0.2, 0.0]},
    )


# --- container -------------------------------------------------------------------------------


def test_build_records_and_image_ids() -> None:
    comparisons = sample()
    assert len(comparisons) == 3
    assert comparisons[0] == Comparison("p/a.jpg", "p/b.jpg", True, {"sface": 0.71, "arc.v2": 0.9})
    assert comparisons.image_ids() == ["p/a.jpg", "p/b.jpg", "q/c.png", "r/d.png"]
    rebuilt = Comparisons.from_records(list(comparisons))
    assert list(rebuilt) == list(comparisons)


def test_from_records_needs_the_same_models() -> None:
    records = [Comparison("a", "b", True, {"s": 0.1}), Comparison("a", "c", False)]
    with pytest.raises(ValueError, match="has scores for"):
        Comparisons.from_records(records)


def test_take_and_with_similarity() -> None:
    subset = sample().take([2, 0]).with_similarity("new", [0.5, 0.6])
    assert subset.a.tolist() == ["q/c.png", "p/a.jpg"]
    assert subset.similarity["sface"].tolist() == [-1.0, 0.71]
    assert subset.similarity["new"].tolist() == [0.5, 0.6]


def test_columns_must_have_one_entry_per_comparison() -> None:
    with pytest.raises(ValueError, match="column 'mated'"):
        Comparisons.build(["a"], ["b"], [True, False])
    with pytest.raises(ValueError, match="column 'x'"):
        Comparisons.build(["a"], ["b"], [True], {"x": [0.1, 0.2]})


def test_model_names_are_checked() -> None:
    with pytest.raises(ValueError, match="model name"):
        Comparisons.build(["a"], ["b"], [True], {"bad name": [0.1]})


def test_empty_comparisons() -> None:
    empty = Comparisons.build([], [], [])
    assert len(empty) == 0 and empty.image_ids() == []


# --- CSV -------------------------------------------------------------------------------------


def test_csv_round_trip_keeps_exact_scores(tmp_path: Path) -> None:
    path = tmp_path / "out" / "comparisons.csv"
    write_comparisons_csv(path, sample())
    lines = path.read_text().splitlines()
    assert lines[0] == "a,b,mated,similarity_sface,similarity_arc.v2"
    assert lines[1].startswith("p/a.jpg,p/b.jpg,1,0.71,")
    back = read_comparisons_csv(path)
    assert back.a.tolist() == sample().a.tolist()
    assert back.mated.tolist() == [True, False, False]
    assert back.similarity["sface"].tolist() == sample().similarity["sface"].tolist()


def test_csv_without_similarity(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    write_comparisons_csv(path, Comparisons.build(["a.png"], ["b.png"], [False]))
    assert path.read_text() == "a,b,mated\na.png,b.png,0\n"
    assert read_comparisons_csv(path).similarity == {}


def test_csv_accepts_bool_spellings_plain_similarity_and_extra_columns(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.csv",
        "\ufeffA, b ,Mated,similarity,fold\n"
        "x1.jpg,y1.jpg,true,0.5,1\n"
        "\n"
        "x2.jpg,y2.jpg,NO,-0.25,1\n"
        "x3.jpg,y3.jpg,Yes,1e-3,2\n"
        "x4.jpg,y4.jpg,0,0,2\n",
    )
    comparisons = read_comparisons_csv(path)
    assert comparisons.mated.tolist() == [True, False, True, False]
    assert comparisons.similarity[UNNAMED_MODEL].tolist() == [0.5, -0.25, 0.001, 0.0]


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (
            "a,b,mated\nx.jpg,y.jpg,maybe\n",
            2,
            "mated must be 1/0, true/false or yes/no, not 'maybe'",
        ),
        ("a,b,mated,similarity_s\nx.jpg,y.jpg,1,high\n", 2, "finite number, not 'high'"),
        ("a,b,mated,similarity_s\nx.jpg,y.jpg,1,nan\n", 2, "finite number, not 'nan'"),
        ("a,b,mated,similarity_s\nx.jpg,y.jpg,1,\n", 2, "finite number, not ''"),
        ("a,b\nx.jpg,y.jpg\n", 1, "missing column(s) mated"),
        ("a,b,mated\nx.jpg,x.jpg,1\n", 2, "an image compared with itself ('x.jpg')"),
        ("a,b,mated\nx.jpg,y.jpg,1\nz.jpg,w.jpg,0\ny.jpg,x.jpg,1\n", 4, "(first on line 2)"),
        ("a,b,mated\nx.jpg,y.jpg\n", 2, "expected 3 values"),
        ("a,b,mated\n../x.jpg,y.jpg,1\n", 2, "must be a relative path"),
        ("a,b,mated\n/abs/x.jpg,y.jpg,1\n", 2, "must be a relative path"),
        ("a,b,mated\nx.jpg,,1\n", 2, "empty image id"),
        ("a,b,mated,similarity_s,similarity_s\n", 1, "duplicate column"),
        ("a,b,mated,similarity,similarity_default\n", 1, "two similarity columns"),
        ("a,b,mated,similarity_\n", 1, "model name"),
    ],
)
def test_csv_errors_name_file_and_line(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = write(tmp_path / "c.csv", text)
    with pytest.raises(UserError) as caught:
        read_comparisons_csv(path)
    assert str(caught.value).startswith(f"{path}:{line}: ")
    assert message in str(caught.value)


def test_csv_empty_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="empty file"):
        read_comparisons_csv(write(tmp_path / "e.csv", "\n\n"))
    with pytest.raises(UserError, match="file not found"):
        read_comparisons_csv(tmp_path / "nope.csv")


# --- LFW pairs.txt ---------------------------------------------------------------------------

PAIRS = """2\t2
Aaron\t1\t2
Bea\t1\t3

Aaron\t1\tBea\t2
Carl\t1\tBea\t1
Bea\t2\t3
Carl\t1\t2
Aaron\t2\tCarl\t2
Bea\t3\tCarl\t1
"""


def test_lfw_pairs_folds_and_ids(tmp_path: Path) -> None:
    comparisons = read_lfw_pairs(write(tmp_path / "pairs.txt", PAIRS))
    assert len(comparisons) == 8
    assert comparisons.mated.tolist() == [True, True, False, False] * 2
    assert comparisons[0] == Comparison("Aaron/Aaron_0001.jpg", "Aaron/Aaron_0002.jpg", True)
    assert comparisons[3] == Comparison("Carl/Carl_0001.jpg", "Bea/Bea_0001.jpg", False)


def test_lfw_single_number_header(tmp_path: Path) -> None:
    text = "1\nAaron 1 2\nAaron 1 Bea 1\n"
    comparisons = read_lfw_pairs(write(tmp_path / "pairsDevTest.txt", text))
    assert comparisons.mated.tolist() == [True, False]


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("x 300\n", 1, "expected a header"),
        ("0\n", 1, "expected a header"),
        ("1 1\nAaron 1 Bea 2\nAaron 1 Bea 3\n", 2, "expected a matched pair 'name i j'"),
        ("1 1\nAaron 1 2\nAaron 1 2\n", 3, "expected a mismatched pair"),
        ("1 1\nAaron 1 x\nAaron 1 Bea 1\n", 2, "positive integer, not 'x'"),
        ("1 1\nAaron 0 1\nAaron 1 Bea 1\n", 2, "positive integer, not '0'"),
        ("1 1\nAaron 2 2\nAaron 1 Bea 1\n", 2, "compared with itself"),
        ("1 1\nAaron 1 2\nAaron 1 Aaron 3\n", 3, "a mismatched pair of one person"),
        ("1 1\nAaron 1 2\nAaron 1 Bea 1\nBea 1 2\n", 4, "promises 1 fold(s) of 1"),
        ("2 1\nAaron 1 2\nAaron 1 Bea 1\nAaron 2 1\nBea 1 Aaron 1\n", 4, "duplicate comparison"),
        ("1 1\n../x 1 2\nAaron 1 Bea 1\n", 2, "not a person's name"),
    ],
)
def test_lfw_errors_name_file_and_line(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = write(tmp_path / "pairs.txt", text)
    with pytest.raises(UserError) as caught:
        read_lfw_pairs(path)
    assert str(caught.value).startswith(f"{path}:{line}: ")
    assert message in str(caught.value)


def test_lfw_too_few_lines_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "pairs.txt", "10 300\nAaron 1 2\n")
    with pytest.raises(UserError, match=r"pairs\.txt: the header promises 10 fold"):
        read_lfw_pairs(path)


def test_lfw_checks_images_under_the_root(tmp_path: Path) -> None:
    path = write(tmp_path / "pairs.txt", PAIRS)
    root = tmp_path / "lfw"
    (root / "Aaron").mkdir(parents=True)
    (root / "Aaron" / "Aaron_0001.jpg").write_bytes(b"x")
    with pytest.raises(UserError) as caught:
        read_lfw_pairs(path, root)
    message = str(caught.value)
    assert message.startswith(f"{path}: 6 image(s) not found under {root}: ")
    assert "Aaron/Aaron_0002.jpg, Bea/Bea_0001.jpg" in message
    assert "(1 more)" in message


# --- embeddings ------------------------------------------------------------------------------


def test_cosine_similarities_from_embeddings() -> None:
    comparisons = Comparisons.build(["a", "a", "c"], ["b", "c", "b"], [True, False, False])
    embeddings = {
        "a": np.array([1.0, 0.0]),
        "b": np.array([2.0, 2.0]),
        "c": np.array([0.0, -3.0], dtype=np.float32),
    }
    scores = similarities_from_embeddings(comparisons, embeddings)
    assert scores.dtype == np.float64
    np.testing.assert_allclose(scores, [np.sqrt(0.5), 0.0, -np.sqrt(0.5)])


def test_missing_embeddings_are_counted_and_named() -> None:
    images = [f"img{index}.jpg" for index in range(8)]
    comparisons = Comparisons.build(images[:4], images[4:], [True] * 4)
    with pytest.raises(UserError) as caught:
        similarities_from_embeddings(comparisons, {"img0.jpg": np.ones(3)})
    assert "no embedding for 7 of 8 image(s): img4.jpg, img1.jpg" in str(caught.value)
    assert "(2 more)" in str(caught.value)


def test_zero_and_mismatched_embeddings_are_refused() -> None:
    comparisons = Comparisons.build(["a"], ["b"], [True])
    with pytest.raises(UserError, match="all zeros: b"):
        similarities_from_embeddings(comparisons, {"a": np.ones(2), "b": np.zeros(2)})
    with pytest.raises(UserError, match="different sizes"):
        similarities_from_embeddings(comparisons, {"a": np.ones(2), "b": np.ones(3)})


def test_embedding_dir_round_trip_keeps_subfolders(tmp_path: Path) -> None:
    embeddings = {"Aaron/Aaron_0001.jpg": np.arange(4.0), "top.png": np.ones((1, 4))}
    save_embedding_dir(tmp_path / "emb", embeddings)
    assert (tmp_path / "emb" / "Aaron" / "Aaron_0001.jpg.npy").is_file()
    loaded = load_embedding_dir(tmp_path / "emb")
    assert sorted(loaded) == ["Aaron/Aaron_0001.jpg", "top.png"]
    assert loaded["top.png"].shape == (4,)
    comparisons = Comparisons.build(["Aaron/Aaron_0001.jpg"], ["top.png"], [False])
    assert similarities_from_embeddings(comparisons, loaded)[0] == pytest.approx(6 / (14**0.5 * 2))


def test_embedding_dir_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"no \.npy"):
        load_embedding_dir(tmp_path)
    np.save(tmp_path / "bad.jpg.npy", np.ones((2, 3)))
    with pytest.raises(UserError, match=r"bad\.jpg\.npy: expected one finite vector"):
        load_embedding_dir(tmp_path)
    (tmp_path / "bad.jpg.npy").write_bytes(b"not numpy")
    with pytest.raises(UserError, match=r"bad\.jpg\.npy: cannot read the embedding"):
        load_embedding_dir(tmp_path)
    with pytest.raises(ValueError, match="relative path"):
        save_embedding_dir(tmp_path, {"../escape.jpg": np.ones(2)})
