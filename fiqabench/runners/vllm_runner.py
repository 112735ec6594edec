"""Local vision-language models on vLLM's offline engine (`runner: vllm`).

Install: `pip install 'fiqabench[vllm]'` (Linux with an NVIDIA GPU). `model_id` is a hub id or a
local folder; `vllm:<catalog alias>` runs a catalog model here with the same settings as on
transformers (`min_pixels`/`max_pixels` go to the processor through `mm_processor_kwargs`).

Requests go to `LLM.chat` many conversations at a time (`batch_size` per call; vLLM schedules
them itself), images as PIL objects in `image_pil` content parts, so nothing is re-encoded. A call
that fails (one prompt too long, say) is retried request by request, so only the request that
really fails gets an error.

`score_levels` reads one step of log-probabilities with generation restricted to the level
tokens (`allowed_token_ids`), renormalises the levels' log-probabilities over the levels and takes
the expectation of their weights (Q-Align, `fiqabench.runners.levels`). vLLM reports the top
`TOP_LOGPROBS` raw log-probabilities plus the chosen token: a level outside them has a probability
below all of those and counts as 0 (exact with the engine argument
`logprobs_mode="processed_logprobs"`, where only the levels are left to report).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from fiqabench.benchmark.images import load_rgb
from fiqabench.benchmark.schema import (
    GenerationConfig,
    ImagePart,
    Request,
    Response,
    TextPart,
    Usage,
)
from fiqabench.errors import UserError
from fiqabench.extras import require
from fiqabench.runners import levels as lv
from fiqabench.runners.base import ModelIdentity

EXTRA = "vllm"
TOP_LOGPROBS = 20  # vLLM's default max_logprobs

Conversation = list[dict[str, Any]]
Work = Callable[[list[Request], list[Conversation]], list[Response]]


class VLLMRunner:
    """Generates with `vllm.LLM.chat`; scores levels from next-token log-probabilities."""

    def __init__(
        self,
        identity: ModelIdentity,
        *,
        revision: str | None = None,
        dtype: str = "auto",
        max_model_len: int | None = None,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        max_image_side: int | None = None,
        limit_mm_per_prompt: int = 1,
        load_format: str = "auto",
        batch_size: int = 64,
        min_pixels: int | None = None,
        max_pixels: int | None = None,
        trust_remote_code: bool = False,
        seed: int = 0,
        **extra: Any,
    ):
        vllm = require("vllm", EXTRA)
        if batch_size < 1:
            raise UserError(f"batch_size must be at least 1, not {batch_size}")
        if max_image_side is not None and max_image_side < 1:
            raise UserError(f"max_image_side must be at least 1, not {max_image_side}")
        self.identity = identity
        self.batch_size = batch_size
        self.max_image_side = max_image_side
        options = engine_options(
            identity,
            revision=revision,
            dtype=dtype,
            max_model_len=max_model_len,
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            limit_mm_per_prompt=limit_mm_per_prompt,
            load_format=load_format,
            min_pixels=min_pixels,
            max_pixels=max_pixels,
            trust_remote_code=trust_remote_code,
            seed=seed,
            extra=extra,
        )
        self.llm: Any = vllm.LLM(**options)
        self.sampling_params: Callable[..., Any] = vllm.SamplingParams

    def generate(self, requests: Sequence[Request]) -> Iterator[tuple[Request, Response]]:
        """Text per request (greedy at temperature 0), yielded `batch_size` at a time."""
        yield from self._run(list(requests), self._generate_batch)

    def score_levels(
        self,
        requests: Sequence[Request],
        levels: Sequence[str],
        weights: Sequence[float] | None = None,
    ) -> Iterator[tuple[Request, Response]]:
        """`Response(score=Σ p_i·w_i, logprobs={level: log p_i}, text=argmax level)` per request.

        Raises LevelTokenError (before any request runs) when a level is not one token.
        """
        token_ids = lv.level_token_ids(self.llm.get_tokenizer(), levels)
        level_weights = lv.check_weights(levels, weights)
        params = self.sampling_params(**scoring_options(token_ids))

        def work(batch: list[Request], conversations: list[Conversation]) -> list[Response]:
            outputs = self.llm.chat(conversations, sampling_params=params, use_tqdm=False)
            return [
                level_response(
                    top_logprobs(output), token_ids, levels, level_weights, prompt_tokens(output)
                )
                for output in outputs
            ]

        yield from self._run(list(requests), work)

    def close(self) -> None:
        self.llm = None
        gc.collect()
        try:
            import torch
        except ImportError:
            return
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    # ----------------------------------------------------------------------------- batches

    def _generate_batch(
        self, batch: list[Request], conversations: list[Conversation]
    ) -> list[Response]:
        params = [self.sampling_params(**sampling_options(r.generation, r.key)) for r in batch]
        outputs = self.llm.chat(conversations, sampling_params=params, use_tqdm=False)
        return [text_response(output) for output in outputs]

    def _run(self, requests: list[Request], work: Work) -> Iterator[tuple[Request, Response]]:
        for start in range(0, len(requests), self.batch_size):
            ready: list[Request] = []
            conversations: list[Conversation] = []
            for request in requests[start : start + self.batch_size]:
                try:
                    conversations.append(conversation(request, self.max_image_side))
                except Exception as exc:  # a bad image fails its request only
                    yield request, Response(error=describe(exc))
                    continue
                ready.append(request)
            if ready:
                yield from zip(ready, self._attempt(ready, conversations, work), strict=True)

    def _attempt(
        self, batch: list[Request], conversations: list[Conversation], work: Work
    ) -> list[Response]:
        """Run a batch; if the call fails, run its requests one by one to find the bad one."""
        started = time.perf_counter()
        try:
            responses = work(batch, conversations)
            if len(responses) != len(batch):
                raise RuntimeError(f"vLLM returned {len(responses)} outputs for {len(batch)}")
        except Exception as exc:
            if len(batch) == 1:
                return [Response(error=describe(exc))]
            return [
                response
                for request, convo in zip(batch, conversations, strict=True)
                for response in self._attempt([request], [convo], work)
            ]
        latency = (time.perf_counter() - started) / len(batch)
        return [r.model_copy(update={"latency_s": latency}) for r in responses]


# --------------------------------------------------------------------------------- payloads


def engine_options(
    identity: ModelIdentity,
    *,
    revision: str | None,
    dtype: str,
    max_model_len: int | None,
    tensor_parallel_size: int,
    gpu_memory_utilization: float,
    limit_mm_per_prompt: int,
    load_format: str,
    min_pixels: int | None,
    max_pixels: int | None,
    trust_remote_code: bool,
    seed: int,
    extra: Mapping[str, Any],
) -> dict[str, Any]:
    """Keyword arguments of `vllm.LLM`; `extra` passes any other engine argument through."""
    pinned = revision or identity.revision
    options: dict[str, Any] = {
        "model": identity.model_id,
        "revision": pinned,
        "tokenizer_revision": pinned,
        "dtype": dtype,
        "tensor_parallel_size": tensor_parallel_size,
        "gpu_memory_utilization": gpu_memory_utilization,
        "limit_mm_per_prompt": {"image": limit_mm_per_prompt},
        "load_format": load_format,
        "trust_remote_code": trust_remote_code,
        "seed": seed,
    }
    if max_model_len is not None:
        options["max_model_len"] = max_model_len
    processor = {
        k: v for k, v in (("min_pixels", min_pixels), ("max_pixels", max_pixels)) if v is not None
    }
    if processor:
        options["mm_processor_kwargs"] = processor
    options.update(extra)
    return options


def conversation(request: Request, max_image_side: int | None = None) -> Conversation:
    """The request as an OpenAI-style conversation, images as PIL `image_pil` parts in place."""
    return [
        {
            "role": message.role,
            "content": [content_part(part, max_image_side) for part in message.content],
        }
        for message in request.messages
    ]


def content_part(part: ImagePart | TextPart, max_image_side: int | None) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    return {"type": "image_pil", "image_pil": load_image(part, max_image_side)}


def load_image(part: ImagePart, max_image_side: int | None) -> Image.Image:
    """The canonical RGB view, shrunk like HFRunner does so both engines see the same pixels."""
    image = load_rgb(Path(part.path))
    if max_image_side is not None and max(image.size) > max_image_side:
        image.thumbnail((max_image_side, max_image_side), Image.Resampling.LANCZOS)
    return image


def sampling_options(config: GenerationConfig, key: str) -> dict[str, Any]:
    """`SamplingParams` arguments for a task's settings; stop strings are cut from the text."""
    options: dict[str, Any] = {
        "max_tokens": config.max_new_tokens,
        "temperature": config.temperature,
        "top_p": 1.0 if config.top_p is None else config.top_p,
        "stop": list(config.stop),
    }
    if config.temperature > 0:
        # Seeded by the request, not the batch, so a resumed run samples the same answer.
        options["seed"] = int(key[:8], 16) if _is_hex(key[:8]) else 0
    return options


def scoring_options(token_ids: Sequence[int]) -> dict[str, Any]:
    """One greedy step restricted to the level tokens, with the top log-probabilities."""
    return {
        "max_tokens": 1,
        "temperature": 0.0,
        "logprobs": TOP_LOGPROBS,
        "allowed_token_ids": list(token_ids),
    }


def _is_hex(text: str) -> bool:
    return bool(text) and all(c in "0123456789abcdefABCDEF" for c in text)


# --------------------------------------------------------------------------------- outputs


def text_response(output: Any) -> Response:
    """A `vllm.RequestOutput` as a Response (text and token counts)."""
    completion = output.outputs[0]
    return Response(
        text=completion.text,
        usage=Usage(input_tokens=prompt_tokens(output), output_tokens=len(completion.token_ids)),
    )


def prompt_tokens(output: Any) -> int:
    return len(getattr(output, "prompt_token_ids", None) or [])


def top_logprobs(output: Any) -> dict[int, float]:
    """The first generated position's {token id: log-probability}."""
    steps = output.outputs[0].logprobs or []
    if not steps:
        return {}
    return {int(token): float(entry.logprob) for token, entry in steps[0].items()}


def level_response(
    top: Mapping[int, float],
    token_ids: Sequence[int],
    levels: Sequence[str],
    weights: Sequence[float],
    input_tokens: int = 0,
) -> Response:
    """Expectation of the weights over the levels found in `top`, renormalised over them."""
    present = [
        (level, top[token], weight)
        for level, token, weight in zip(levels, token_ids, weights, strict=True)
        if token in top
    ]
    if not present:
        return Response(error="no level token among the returned log-probabilities")
    names = [level for level, _, _ in present]
    logprobs = lv.log_softmax([value for _, value, _ in present])
    best = max(range(len(names)), key=logprobs.__getitem__)
    return Response(
        text=names[best],
        score=lv.expectation(logprobs, [weight for _, _, weight in present]),
        logprobs=dict(zip(names, logprobs, strict=True)),
        usage=Usage(input_tokens=input_tokens, output_tokens=0),
    )


def describe(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")
