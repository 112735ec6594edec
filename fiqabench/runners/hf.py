"""Local vision-language models through Hugging Face transformers (`runner: hf`).

Install: `pip install 'fiqabench[hf]'` (torch and transformers 5). On a machine without an
NVIDIA GPU install the CPU build of torch first, or pip pulls several GB of CUDA wheels:
`pip install torch --index-url https://download.pytorch.org/whl/cpu`.

`model_id` is a hub id or a local folder, loaded with `AutoModelForImageTextToText` and
`AutoProcessor`. Without torchvision, transformers 5 cannot build the Qwen2-VL / Qwen2.5-VL /
SmolVLM processors (they insist on a video processor); the runner then builds the processor
from its tokenizer and image processor with no video part, which is all that images need.

Two protocols, which give different numbers and are labelled apart in results:
- `generate`: greedy text (the model's chat template, images in place), parsed by the task;
  for a K-level prompt that is the argmax level only.
- `score_levels`: the next-token logits of the level tokens at the answer position,
  renormalised over the levels and turned into the expectation of their weights (Q-Align),
  see `fiqabench.runners.levels`.

Batches are left-padded with an attention mask, and each family computes its own position ids
(Qwen's 3-D M-RoPE included) from that mask, so an answer does not depend on the batch size:
exactly in float32 (CPU, or `dtype="float32"`). In bfloat16, the GPU default, padding changes
the kernels' summation order, so level scores move by about 1e-3 with the batch size and a long
greedy answer can part at a near-tie; use float32 where bit-for-bit reruns matter.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from PIL import Image

from fiqabench.benchmark.images import load_rgb
from fiqabench.benchmark.schema import (
    GenerationConfig,
    ImagePart,
    Request,
    Response,
    Usage,
)
from fiqabench.errors import UserError
from fiqabench.extras import require
from fiqabench.runners import levels as lv
from fiqabench.runners.base import ModelIdentity

if TYPE_CHECKING:
    import torch
    from transformers import BatchFeature, PreTrainedModel, PreTrainedTokenizerBase
    from transformers.generation.utils import GenerationMixin
    from transformers.processing_utils import ProcessorMixin

EXTRA = "hf"
DTYPES = ("auto", "bfloat16", "float16", "float32")

Work = Callable[[list["Prepared"]], list[Response]]


@dataclass(frozen=True)
class Prepared:
    """A request made ready for the processor: its rendered prompt and its loaded images."""

    request: Request
    prompt: str
    images: list[Image.Image]


class HFRunner:
    """Greedy generation and level scoring with a local transformers model (see module doc).

    `dtype` and `device` "auto" mean bfloat16 on a CUDA GPU, else float32 on the CPU.
    `max_image_side` shrinks images before the processor sees them; `min_pixels` and
    `max_pixels` go to Qwen-VL image processors. Further keyword arguments go to the model's
    `from_pretrained` (e.g. `attn_implementation="sdpa"`).
    """

    def __init__(
        self,
        identity: ModelIdentity,
        *,
        revision: str | None = None,
        dtype: str = "auto",
        device: str = "auto",
        batch_size: int = 8,
        max_image_side: int | None = None,
        min_pixels: int | None = None,
        max_pixels: int | None = None,
        trust_remote_code: bool = False,
        **extra: Any,
    ):
        require("torch", EXTRA)
        require("transformers", EXTRA)
        if batch_size < 1:
            raise UserError(f"batch_size must be at least 1, not {batch_size}")
        if max_image_side is not None and max_image_side < 1:
            raise UserError(f"max_image_side must be at least 1, not {max_image_side}")
        self.identity = identity
        self.batch_size = batch_size
        self.max_image_side = max_image_side
        self.device = pick_device(device)
        self.dtype = pick_dtype(dtype, self.device)
        source = Source(
            identity.model_id, revision or identity.revision, trust_remote_code=trust_remote_code
        )
        image_options = {
            k: v
            for k, v in (("min_pixels", min_pixels), ("max_pixels", max_pixels))
            if v is not None
        }
        self.processor = load_processor(source, image_options)
        self.tokenizer = prepare_tokenizer(self.processor)
        self._model: PreTrainedModel | None = load_model(source, self.dtype, self.device, extra)

    @property
    def model(self) -> PreTrainedModel:
        if self._model is None:
            raise RuntimeError(f"runner for '{self.identity.alias}' is closed")
        return self._model

    # ----------------------------------------------------------------------------- protocol

    def generate(self, requests: Sequence[Request]) -> Iterator[tuple[Request, Response]]:
        """Greedy (temperature 0) or sampled text per request, yielded batch by batch."""
        for config, group in _by_generation(requests).items():
            yield from self._run(group, functools.partial(self._generate_batch, config=config))

    def score_levels(
        self,
        requests: Sequence[Request],
        levels: Sequence[str],
        weights: Sequence[float] | None = None,
    ) -> Iterator[tuple[Request, Response]]:
        """`Response(score=Σ p_i·w_i, logprobs={level: log p_i}, text=argmax level)` per request.

        Raises LevelTokenError (before any request runs) when a level is not one token.
        """
        token_ids = lv.level_token_ids(self.tokenizer, levels)
        level_weights = lv.check_weights(levels, weights)
        work = functools.partial(
            self._score_batch, token_ids=token_ids, levels=list(levels), weights=level_weights
        )
        yield from self._run(list(requests), work)

    def close(self) -> None:
        import torch

        self._model = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    # ----------------------------------------------------------------------------- batches

    def _run(self, requests: list[Request], work: Work) -> Iterator[tuple[Request, Response]]:
        for start in range(0, len(requests), self.batch_size):
            ready: list[Prepared] = []
            for request in requests[start : start + self.batch_size]:
                try:
                    ready.append(self._prepare(request))
                except Exception as exc:  # a bad image or prompt fails its request only
                    yield request, Response(error=describe(exc))
            if ready:
                yield from zip((p.request for p in ready), self._attempt(ready, work), strict=True)

    def _attempt(self, ready: list[Prepared], work: Work) -> list[Response]:
        """Run a batch; if it fails (out of memory, one bad input), run its requests one by one,
        so that only the request that really fails gets the error."""
        started = time.perf_counter()
        try:
            responses = work(ready)
        except Exception as exc:
            if len(ready) == 1:
                return [Response(error=describe(exc))]
            free_memory()
            return [response for item in ready for response in self._attempt([item], work)]
        latency = (time.perf_counter() - started) / len(ready)
        return [r.model_copy(update={"latency_s": latency}) for r in responses]

    def _prepare(self, request: Request) -> Prepared:
        images = [self._image(part) for part in request.images]
        return Prepared(request, self._render(chat_messages(request)), images)

    def _image(self, part: ImagePart) -> Image.Image:
        image = load_rgb(Path(part.path))
        if self.max_image_side is not None and max(image.size) > self.max_image_side:
            image.thumbnail((self.max_image_side, self.max_image_side), Image.Resampling.LANCZOS)
        return image

    def _render(self, messages: list[dict[str, Any]]) -> str:
        if getattr(self.processor, "video_processor", "") is None:
            # Built without its video part, whose settings SmolVLM's own renderer reads.
            prompt = self.tokenizer.apply_chat_template(
                messages,
                chat_template=default_template(self.processor),
                add_generation_prompt=True,
                tokenize=False,
            )
        else:
            prompt = self.processor.apply_chat_template(
                messages, add_generation_prompt=True, tokenize=False
            )
        assert isinstance(prompt, str)
        return prompt

    def _encode(self, batch: list[Prepared]) -> BatchFeature:
        texts = [item.prompt for item in batch]
        images = [item.images for item in batch] if any(item.images for item in batch) else None
        options: dict[str, Any] = {}
        bos = self.tokenizer.bos_token
        if isinstance(bos, str) and all(text.startswith(bos) for text in texts):
            options["add_special_tokens"] = False  # the template wrote it; do not add a second
        inputs = self.processor(
            text=texts, images=images, padding=True, return_tensors="pt", **options
        )
        moved: BatchFeature = inputs.to(self.model.device, dtype=self.dtype)
        return moved

    def _generator(self) -> GenerationMixin:
        # Every image-text-to-text model generates; PreTrainedModel's type does not say so.
        return cast("GenerationMixin", self.model)

    def _generate_batch(self, batch: list[Prepared], config: GenerationConfig) -> list[Response]:
        import torch

        inputs = self._encode(batch)
        with torch.inference_mode():
            output = self._generator().generate(**inputs, **self._decoding(config))
        assert isinstance(output, torch.Tensor)
        new_tokens = output[:, inputs["input_ids"].shape[1] :]
        texts = self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        input_counts = inputs["attention_mask"].sum(dim=1).tolist()
        eos = eos_ids(self.model)
        return [
            Response(
                text=truncate(text, config.stop),
                usage=Usage(input_tokens=int(n_in), output_tokens=generated_length(row, eos)),
            )
            for text, n_in, row in zip(texts, input_counts, new_tokens.tolist(), strict=True)
        ]

    def _decoding(self, config: GenerationConfig) -> dict[str, Any]:
        options: dict[str, Any] = {
            "max_new_tokens": config.max_new_tokens,
            "pad_token_id": self.tokenizer.pad_token_id,
        }
        if config.temperature == 0:
            options.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            options.update(do_sample=True, temperature=config.temperature, top_p=config.top_p)
        return options

    def _score_batch(
        self,
        batch: list[Prepared],
        token_ids: list[int],
        levels: list[str],
        weights: list[float],
    ) -> list[Response]:
        import torch

        inputs = self._encode(batch)
        # One step of greedy generation: the model's own position-id logic (M-RoPE, left
        # padding) applies, and `logits` are the raw ones, before any logits processor.
        with torch.inference_mode():
            output = self._generator().generate(
                **inputs,
                max_new_tokens=1,
                do_sample=False,
                temperature=None,
                top_p=None,
                top_k=None,
                pad_token_id=self.tokenizer.pad_token_id,
                output_logits=True,
                return_dict_in_generate=True,
            )
        assert not isinstance(output, torch.Tensor) and output.logits is not None
        rows = output.logits[0][:, token_ids].float().tolist()
        input_counts = inputs["attention_mask"].sum(dim=1).tolist()
        return [
            level_response(row, levels, weights, int(n_in))
            for row, n_in in zip(rows, input_counts, strict=True)
        ]


# --------------------------------------------------------------------------------- loading


@dataclass(frozen=True)
class Source:
    model_id: str
    revision: str | None
    trust_remote_code: bool = False

    def options(self) -> dict[str, Any]:
        return {"revision": self.revision, "trust_remote_code": self.trust_remote_code}


def pick_device(device: str) -> str:
    import torch

    if device != "auto":
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def pick_dtype(dtype: str, device: str) -> torch.dtype:
    import torch

    if dtype not in DTYPES:
        raise UserError(f"dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
    if dtype != "auto":
        resolved: torch.dtype = getattr(torch, dtype)
        return resolved
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def load_model(
    source: Source, dtype: torch.dtype, device: str, extra: dict[str, Any]
) -> PreTrainedModel:
    from transformers import AutoModelForImageTextToText

    with _load_errors(source):
        model = AutoModelForImageTextToText.from_pretrained(
            source.model_id, dtype=dtype, device_map=device, **source.options(), **extra
        )
    return model  # from_pretrained leaves it in eval mode


def load_processor(source: Source, image_options: dict[str, Any]) -> ProcessorMixin:
    from transformers import AutoProcessor
    from transformers.processing_utils import ProcessorMixin

    with _load_errors(source):
        try:
            processor = AutoProcessor.from_pretrained(  # type: ignore[no-untyped-call]
                source.model_id, **source.options(), **image_options
            )
        except ImportError as exc:
            if "torchvision" not in str(exc).lower():
                raise
            processor = processor_without_video(source, image_options)
    if not isinstance(processor, ProcessorMixin):
        raise UserError(f"'{source.model_id}' has no image processor: not a vision-language model")
    if processor.chat_template is None and processor.tokenizer.chat_template is None:
        raise UserError(f"'{source.model_id}' has no chat template")
    return processor


def processor_without_video(source: Source, image_options: dict[str, Any]) -> ProcessorMixin:
    """The model's processor class, built from its tokenizer and image processor alone.

    transformers 5 gives Qwen-VL and SmolVLM processors a video processor that needs
    torchvision; images never use it, so it is left out (`None`).
    """
    from transformers import AutoConfig, AutoImageProcessor, AutoTokenizer
    from transformers.models.auto.processing_auto import PROCESSOR_MAPPING
    from transformers.processing_utils import ProcessorMixin

    config = AutoConfig.from_pretrained(source.model_id, **source.options())
    found: Any = PROCESSOR_MAPPING.get(type(config), None)
    if not (isinstance(found, type) and issubclass(found, ProcessorMixin)):
        raise UserError(f"'{source.model_id}' has no processor class that runs without torchvision")
    cls: type[ProcessorMixin] = found
    processor_dict, options = cls.get_processor_dict(source.model_id, revision=source.revision)
    parts: list[Any] = []
    for attribute in cls.get_attributes():  # type: ignore[no-untyped-call]
        if attribute == "tokenizer":
            parts.append(AutoTokenizer.from_pretrained(source.model_id, **source.options()))
        elif attribute == "image_processor":
            parts.append(
                AutoImageProcessor.from_pretrained(  # type: ignore[no-untyped-call]
                    source.model_id, **source.options(), **image_options
                )
            )
        elif attribute == "video_processor":
            parts.append(None)
        else:
            raise UserError(f"cannot build {cls.__name__} without torchvision ({attribute})")
    with _video_processor_optional(cls):
        processor: ProcessorMixin = cls.from_args_and_dict(parts, processor_dict, **options)
    return processor


@contextlib.contextmanager
def _video_processor_optional(cls: type[ProcessorMixin]) -> Iterator[None]:
    """Let `cls` accept `video_processor=None` while one processor is built, then restore it.

    The class check is relaxed on `cls` alone (not on ProcessorMixin) and only for `None`.
    """
    name = "check_argument_for_proper_class"
    own = cls.__dict__.get(name)
    check = getattr(cls, name)

    def relaxed(self: ProcessorMixin, argument_name: str, argument: Any) -> Any:
        if argument is None and argument_name == "video_processor":
            return None
        return check(self, argument_name, argument)

    setattr(cls, name, relaxed)
    try:
        yield
    finally:
        if own is None:
            delattr(cls, name)
        else:
            setattr(cls, name, own)


@contextlib.contextmanager
def _load_errors(source: Source) -> Iterator[None]:
    """A missing or unreachable model, or a package its processor needs (SmolVLM's num2words),
    becomes one line naming it, not a traceback."""
    try:
        yield
    except (OSError, ValueError, ImportError) as exc:
        at = f" at revision {source.revision}" if source.revision else ""
        raise UserError(f"cannot load '{source.model_id}'{at}: {describe(exc)}") from exc


def default_template(processor: ProcessorMixin) -> str | None:
    template = processor.chat_template
    return template.get("default") if isinstance(template, dict) else template


def prepare_tokenizer(processor: ProcessorMixin) -> PreTrainedTokenizerBase:
    tokenizer: PreTrainedTokenizerBase = processor.tokenizer
    # Left padding keeps every prompt's last token at the end, where generation continues.
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


# --------------------------------------------------------------------------------- helpers


def chat_messages(request: Request) -> list[dict[str, Any]]:
    """The request in the chat-template form: images as `{"type": "image"}` placeholders."""
    return [
        {
            "role": message.role,
            "content": [
                {"type": "image"}
                if isinstance(part, ImagePart)
                else {"type": "text", "text": part.text}
                for part in message.content
            ],
        }
        for message in request.messages
    ]


def _by_generation(requests: Sequence[Request]) -> dict[GenerationConfig, list[Request]]:
    groups: dict[GenerationConfig, list[Request]] = {}
    for request in requests:
        groups.setdefault(request.generation, []).append(request)
    return groups


def level_response(
    logits: Sequence[float], levels: Sequence[str], weights: Sequence[float], input_tokens: int
) -> Response:
    logprobs = lv.log_softmax(logits)
    best = max(range(len(levels)), key=logprobs.__getitem__)
    return Response(
        text=levels[best],
        score=lv.expectation(logprobs, weights),
        logprobs=dict(zip(levels, logprobs, strict=True)),
        usage=Usage(input_tokens=input_tokens, output_tokens=0),
    )


def truncate(text: str, stops: Sequence[str]) -> str:
    """Cut at the first stop string (generation runs to EOS or the token limit)."""
    cut = min((i for i in (text.find(s) for s in stops if s) if i >= 0), default=len(text))
    return text[:cut]


def eos_ids(model: PreTrainedModel) -> set[int]:
    eos = model.generation_config.eos_token_id
    if eos is None:
        return set()
    return {int(eos)} if isinstance(eos, int) else {int(i) for i in eos}


def generated_length(row: Sequence[int], eos: set[int]) -> int:
    """Tokens generated up to and including the first EOS; padding follows it."""
    for index, token in enumerate(row):
        if token in eos:
            return index + 1
    return len(row)


def describe(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def free_memory() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
