"""`--model fiqabench_replay`: an lmms-eval chat model that replays a fiqabench run's answers.

Deterministic and instant, it still goes through the chat contract a real wrapper uses: the
document from `task_dict`, `doc_to_messages` validated by lmms-eval's own `ChatMessages`, the
images as PIL objects, and `until` present in the generation settings.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lmms_eval.api.model import lmms
from lmms_eval.models.registry_v2 import ModelManifest
from lmms_eval.protocol import ChatMessages
from PIL import Image


class ReplayModel(lmms):
    is_simple = False

    def __init__(self, samples: str, **_: Any) -> None:
        super().__init__()
        self.answers: dict[tuple[str, str], str] = {}
        for line in Path(samples).read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            # A failed call of the recorded run replays as an empty answer: an error again.
            self.answers[(record["task"], record["sample_id"])] = record["response"] or ""

    def generate_until(self, requests: list[Any]) -> list[str]:
        answers = []
        for request in requests:
            _context, doc_to_messages, gen_kwargs, doc_id, task, split = request.args
            if not isinstance(gen_kwargs.get("until"), list):
                raise ValueError(f"no explicit `until` in {gen_kwargs}")
            doc = self.task_dict[task][split][doc_id]
            images, _, _ = ChatMessages(messages=doc_to_messages(doc)).extract_media()
            if not images or not all(isinstance(image, Image.Image) for image in images):
                raise ValueError(f"document {doc} has no PIL images: {images}")
            answers.append(self.answers[(doc["fiqabench_task"], doc["sample_id"])])
        return answers

    def loglikelihood(self, requests: list[Any]) -> list[tuple[float, bool]]:
        raise NotImplementedError("fiqabench tasks only generate")

    def generate_until_multi_round(self, requests: list[Any]) -> list[str]:
        raise NotImplementedError("fiqabench tasks are single-turn")


def manifest() -> ModelManifest:
    return ModelManifest(
        model_id="fiqabench_replay", chat_class_path="fiqabench_lmms_replay.ReplayModel"
    )
