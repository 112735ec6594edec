from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(autouse=True)
def no_hugging_face_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never reach the hub: hub-hosted tasks (qbench-hf) count as unavailable."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("FIQABENCH_HF_MIRROR", raising=False)


SPEC = """\
name: {name}
kind: qa
protocol: test-protocol-v1
data:
  jsonl: items.jsonl
prompt:
  user: {user}
"""


def write_image(path: Path, seed: int = 0, size: tuple[int, int] = (32, 24)) -> Path:
    pixels = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def qa_item(
    index: int, kind: str = "single", image: str = "img.png", **extra: Any
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": f"q{index:05d}",
        "image": image,
        "question": f"Question {index}?",
        "type": kind,
        "scope": "global" if index % 2 else "local",
        "dimension": "technical",
        "subdimension": ["blur", "noise"][index % 2],
        "source": "natural",
    }
    if kind in ("single", "multi"):
        item["options"] = ["Sharp", "Blurry", "Noisy", "Dark"]
        item["answer"] = "B" if kind == "single" else ["A", "C"]
    elif kind == "tf":
        item["answer"] = index % 2 == 0
    else:
        item["answer"] = "A sharp, well exposed portrait."
    item.update(extra)
    return item


TaskFolderFactory = Callable[..., Path]


@pytest.fixture
def task_folder(tmp_path: Path) -> TaskFolderFactory:
    """Build an external task folder: spec, template choice, items (dicts or raw lines), image."""

    def make(
        items: Sequence[dict[str, Any] | str],
        name: str = "ext-qa",
        user_template: str = "qa.j2",
        folder: Path | None = None,
    ) -> Path:
        root = folder or tmp_path / name
        root.mkdir(parents=True, exist_ok=True)
        write_image(root / "img.png")
        (root / f"{name}.yaml").write_text(SPEC.format(name=name, user=user_template))
        lines = [item if isinstance(item, str) else json.dumps(item) for item in items]
        (root / "items.jsonl").write_text("\n".join(lines) + "\n")
        return root

    return make
