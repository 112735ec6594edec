"""lmms-eval model wrappers as fiqabench runners (`runner: lmms`, lmms-eval 0.7.3).

Install: `pip install 'fiqabench[lmms]'` (about 7 GB: torch, CUDA wheels, wandb...). It lets a
model run through a peer harness's own wrapper on fiqabench's prompts, to tell harness effects
from model effects.

The wrapper class comes from `lmms_eval.models.get_model(model)` and is built with
`create_from_arg_string(model_args)`. Requests become `lmms_eval.api.instance.Instance`s for
`generate_until`, in the wrapper's contract:
- chat wrappers (`is_simple = False`): `(context, doc_to_messages, gen_kwargs, doc_id, task,
  split)`, with the request's messages, images as PIL objects in place;
- simple wrappers: `(context, gen_kwargs, doc_to_visual, doc_id, task, split)`: the wrapper puts
  the images before one text, so the system and user texts are joined by a blank line.
Wrappers look documents up in `self.task_dict[task][split][doc_id]`, which the runner fills for
each call. `until` is always given (lmms-eval cuts at the first blank line otherwise) and applied
again here, as some wrappers ignore it.

lmms-eval reports a failed call as text (`[LMMS_EVAL_REQUEST_FAILED ...]`,
`[LMMS_EVAL_BUDGET_EXCEEDED]`, or an empty string from wrappers that swallow exceptions): those
become `Response(error=...)`, never answers, so they are not scored and are retried on resume.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from fiqabench.benchmark.images import load_rgb
from fiqabench.benchmark.schema import GenerationConfig, ImagePart, Request, Response, Usage
from fiqabench.errors import UserError
from fiqabench.extras import require
from fiqabench.runners.base import ModelIdentity

EXTRA = "lmms"
TASK = "fiqabench"
SPLIT = "test"
FAILURE_PREFIX = "[LMMS_EVAL_"
MAX_ERROR_CHARS = 300

Document = dict[str, Any]
InstanceFactory = Callable[..., Any]


class LmmsEvalRunner:
    """Answers requests with an lmms-eval model wrapper's `generate_until`."""

    def __init__(
        self,
        identity: ModelIdentity,
        *,
        model: str,
        model_args: str = "",
        batch_size: int = 1,
        **extra: Any,
    ):
        require("lmms_eval", EXTRA)
        from lmms_eval.api.instance import Instance
        from lmms_eval.models import get_model

        if batch_size < 1:
            raise UserError(f"batch_size must be at least 1, not {batch_size}")
        self.identity = identity
        self.name = model
        self.batch_size = batch_size
        cls = get_model(model)
        self.chat = not getattr(cls, "is_simple", True)
        self.model: Any = cls.create_from_arg_string(
            model_args, {"batch_size": batch_size, **extra}
        )
        self.instance: InstanceFactory = Instance

    def generate(self, requests: Sequence[Request]) -> Iterator[tuple[Request, Response]]:
        pending = list(requests)
        for start in range(0, len(pending), self.batch_size):
            yield from self._run(pending[start : start + self.batch_size])

    def close(self) -> None:
        clean = getattr(self.model, "clean", None)
        if callable(clean):
            clean()
        self.model = None

    def _run(self, batch: list[Request]) -> Iterator[tuple[Request, Response]]:
        ready: list[tuple[Request, Document]] = []
        for request in batch:
            try:
                ready.append((request, document(request)))
            except Exception as exc:  # a bad image fails its request only
                yield request, Response(error=describe(exc))
        if ready:
            yield from zip((r for r, _ in ready), self._attempt(ready), strict=True)

    def _attempt(self, ready: list[tuple[Request, Document]]) -> list[Response]:
        """One `generate_until` call; if it raises, the requests one by one."""
        started = time.perf_counter()
        try:
            outputs = self._call(ready)
        except Exception as exc:
            if len(ready) == 1:
                return [Response(error=f"lmms-eval {self.name}: {describe(exc)}")]
            return [response for item in ready for response in self._attempt([item])]
        latency = (time.perf_counter() - started) / len(ready)
        return [
            to_response(output, request.generation).model_copy(update={"latency_s": latency})
            for output, (request, _) in zip(outputs, ready, strict=True)
        ]

    def _call(self, ready: list[tuple[Request, Document]]) -> list[Any]:
        self.model.task_dict = {TASK: {SPLIT: {i: doc for i, (_, doc) in enumerate(ready)}}}
        instances = [
            make_instance(self.instance, i, request, chat=self.chat)
            for i, (request, _) in enumerate(ready)
        ]
        outputs = list(self.model.generate_until(instances))
        if len(outputs) != len(instances):
            raise RuntimeError(f"{len(outputs)} outputs for {len(instances)} requests")
        return outputs


# --------------------------------------------------------------------------------- payloads


def document(request: Request) -> Document:
    """What the wrapper looks up by doc id: the images, the chat messages and the joined text."""
    images: list[Image.Image] = []
    messages: list[dict[str, Any]] = []
    for message in request.messages:
        content: list[dict[str, Any]] = []
        for part in message.content:
            if isinstance(part, ImagePart):
                images.append(load_rgb(Path(part.path)))
                content.append({"type": "image", "url": images[-1]})
            else:
                content.append({"type": "text", "text": part.text})
        messages.append({"role": message.role, "content": content})
    return {"images": images, "messages": messages, "context": context(request)}


def context(request: Request) -> str:
    """The request's texts in order, one blank line apart (the simple contract has one text)."""
    return "\n\n".join(
        part.text for m in request.messages for part in m.content if not isinstance(part, ImagePart)
    )


def doc_to_visual(doc: Document) -> list[Image.Image]:
    images: list[Image.Image] = doc["images"]
    return images


def doc_to_messages(doc: Document) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = doc["messages"]
    return messages


def gen_kwargs(config: GenerationConfig) -> dict[str, Any]:
    """lmms-eval generation kwargs; `until` explicit, even empty, so no blank-line cut-off."""
    return {
        "until": list(config.stop),
        "max_new_tokens": config.max_new_tokens,
        "temperature": config.temperature,
        "top_p": config.top_p,
        "num_beams": 1,
        "do_sample": config.temperature > 0,
    }


def instance_arguments(doc_id: int, request: Request, *, chat: bool) -> tuple[Any, ...]:
    text, kwargs = context(request), gen_kwargs(request.generation)
    if chat:
        return (text, doc_to_messages, kwargs, doc_id, TASK, SPLIT)
    return (text, kwargs, doc_to_visual, doc_id, TASK, SPLIT)


def make_instance(factory: InstanceFactory, doc_id: int, request: Request, *, chat: bool) -> Any:
    return factory(
        request_type="generate_until",
        arguments=instance_arguments(doc_id, request, chat=chat),
        idx=0,
        metadata={"task": TASK, "doc_id": doc_id, "repeats": 1},
    )


# --------------------------------------------------------------------------------- outputs


def failure(text: str) -> str | None:
    """Why an lmms-eval output is a failed call rather than an answer, or None."""
    stripped = text.strip()
    if not stripped:
        return "lmms-eval returned an empty response (its wrappers return '' when a call fails)"
    if stripped.startswith(FAILURE_PREFIX):
        first = stripped.splitlines()[0]
        return f"lmms-eval: {first[:MAX_ERROR_CHARS]}"
    return None


def to_response(output: Any, config: GenerationConfig) -> Response:
    """A `str` or `GenerationResult` as a Response; failure strings become errors."""
    text = getattr(output, "text", output)
    if not isinstance(text, str):
        return Response(error=f"lmms-eval returned {type(text).__name__}, not text")
    problem = failure(text)
    if problem is not None:
        return Response(error=problem)
    return Response(text=truncate(text, config.stop), usage=usage(output))


def usage(output: Any) -> Usage | None:
    counts = getattr(output, "token_counts", None)
    if counts is None:
        return None
    return Usage(
        input_tokens=getattr(counts, "input_tokens", None) or 0,
        output_tokens=getattr(counts, "output_tokens", None) or 0,
    )


def truncate(text: str, stops: Sequence[str]) -> str:
    cut = min((i for i in (text.find(s) for s in stops if s) if i >= 0), default=len(text))
    return text[:cut]


def describe(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")
