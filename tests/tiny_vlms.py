"""Tiny randomly initialised vision-language models, built in code and saved as hub-style folders.

No weights are downloaded: each model is a real transformers class (Qwen2-VL, Qwen2.5-VL, LLaVA,
Idefics3 as used by SmolVLM, SmolVLM2's own class) with a few hundred thousand random
parameters, a byte-level BPE tokenizer made in code (or a real tokenizer passed in) and the image
processor's defaults, so `HFRunner` exercises its real loading, chat-template, batching and
generation code. Their answers are noise. The folders mirror what the hub holds for each family:
LLaVA and Idefics3 save their processor; the Qwen and SmolVLM processors cannot be built without
their video part (torchvision), so those folders hold the tokenizer, `preprocessor_config.json`
and `chat_template.jinja` (and SmolVLM's `processor_config.json`), as the hub repositories do.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

SEED = 0

# Close to the families' hub templates: the system turn, images as placeholders, then text.
_CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}"
    "{% for c in m['content'] %}{% if c['type'] == 'image' %}IMAGE{% else %}{{ c['text'] }}"
    "{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
QWEN_TEMPLATE = _CHATML.replace("IMAGE", "<|vision_start|><|image_pad|><|vision_end|>")
LLAVA_TEMPLATE = _CHATML.replace("IMAGE", "<image>\n")
IDEFICS3_TEMPLATE = (
    "<|im_start|>{% for m in messages %}{{ m['role'] | capitalize }}"
    "{% if m['content'][0]['type'] == 'image' %}{{ ':' }}{% else %}{{ ': ' }}{% endif %}"
    "{% for c in m['content'] %}{% if c['type'] == 'text' %}{{ c['text'] }}"
    "{% elif c['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}"
    "<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)

QWEN_SPECIALS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
QWEN_VISION_TOKENS = QWEN_SPECIALS[3:]

# A decoder small enough to build and run in well under a second; head_dim 16 → rotary half 8.
_TEXT = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 4096,
}
_MROPE = {"rope_type": "default", "mrope_section": [2, 3, 3]}


def byte_tokenizer(specials: Sequence[str]) -> PreTrainedTokenizerFast:
    """A byte-level BPE with no merges: every byte is a token, plus `specials`."""
    vocab = {ch: i for i, ch in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend)
    tokenizer.add_special_tokens({"additional_special_tokens": list(specials)})
    return tokenizer


def _ids(tokenizer: PreTrainedTokenizerBase, tokens: Sequence[str]) -> dict[str, int]:
    return {token: int(tokenizer.convert_tokens_to_ids(token)) for token in tokens}


def _qwen_tokenizer(tokenizer: PreTrainedTokenizerBase | None) -> PreTrainedTokenizerBase:
    if tokenizer is None:
        tokenizer = byte_tokenizer(QWEN_SPECIALS)
    tokenizer.pad_token = "<|endoftext|>"
    tokenizer.eos_token = "<|im_end|>"
    return tokenizer


def _qwen_text(tokenizer: PreTrainedTokenizerBase) -> dict[str, Any]:
    ids = _ids(tokenizer, QWEN_SPECIALS)
    return {
        **_TEXT,
        "vocab_size": len(tokenizer),
        "rope_parameters": dict(_MROPE),
        "bos_token_id": ids["<|im_start|>"],
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
    }


def _qwen_token_ids(tokenizer: PreTrainedTokenizerBase) -> dict[str, int]:
    ids = _ids(tokenizer, QWEN_SPECIALS)
    return {
        "image_token_id": ids["<|image_pad|>"],
        "video_token_id": ids["<|video_pad|>"],
        "vision_start_token_id": ids["<|vision_start|>"],
        "vision_end_token_id": ids["<|vision_end|>"],
    }


def _save_qwen(
    folder: Path, model: Any, tokenizer: PreTrainedTokenizerBase, image_processor: Any
) -> None:
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    image_processor.save_pretrained(folder)
    (folder / "chat_template.jinja").write_text(QWEN_TEMPLATE, encoding="utf-8")


def build_qwen2_vl(folder: Path, tokenizer: PreTrainedTokenizerBase | None = None) -> Path:
    from transformers import (
        Qwen2VLConfig,
        Qwen2VLForConditionalGeneration,
        Qwen2VLImageProcessorPil,
    )

    tokenizer = _qwen_tokenizer(tokenizer)
    text = _qwen_text(tokenizer)
    vision = {
        "depth": 2,
        "embed_dim": 32,
        "hidden_size": text["hidden_size"],
        "num_heads": 2,
        "mlp_ratio": 2,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
    }
    config = Qwen2VLConfig(text_config=text, vision_config=vision, **_qwen_token_ids(tokenizer))
    model = Qwen2VLForConditionalGeneration(config).eval()
    image_processor = Qwen2VLImageProcessorPil(min_pixels=56 * 56, max_pixels=112 * 112)
    _save_qwen(folder, model, tokenizer, image_processor)
    return folder


def build_qwen2_5_vl(folder: Path, tokenizer: PreTrainedTokenizerBase | None = None) -> Path:
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2VLImageProcessorPil,
    )

    tokenizer = _qwen_tokenizer(tokenizer)
    text = _qwen_text(tokenizer)
    vision = {
        "depth": 2,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_heads": 2,
        "out_hidden_size": text["hidden_size"],
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "window_size": 56,
        "fullatt_block_indexes": [1],
    }
    config = Qwen2_5_VLConfig(text_config=text, vision_config=vision, **_qwen_token_ids(tokenizer))
    model = Qwen2_5_VLForConditionalGeneration(config).eval()
    image_processor = Qwen2VLImageProcessorPil(min_pixels=56 * 56, max_pixels=112 * 112)
    _save_qwen(folder, model, tokenizer, image_processor)
    return folder


def build_llava(folder: Path) -> Path:
    from transformers import (
        CLIPImageProcessorPil,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    tokenizer = byte_tokenizer(["<s>", "</s>", "<pad>", "<image>", "<|im_start|>", "<|im_end|>"])
    tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token = "<s>", "<|im_end|>", "<pad>"
    vision = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=56,
        patch_size=14,
        projection_dim=32,
    )
    text = LlamaConfig(
        **_TEXT,
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_layer=-1,
    )
    model = LlavaForConditionalGeneration(config).eval()
    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": 56}, crop_size={"height": 56, "width": 56}
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=14,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=LLAVA_TEMPLATE,
    )
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def _idefics3_parts() -> tuple[PreTrainedTokenizerFast, dict[str, Any]]:
    """Tokenizer and config arguments shared by Idefics3 and SmolVLM (its successor)."""
    from transformers import LlamaConfig

    grid = [f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7)]
    specials = ["<|im_start|>", "<end_of_utterance>", "<|endoftext|>", "<fake_token_around_image>"]
    tokenizer = byte_tokenizer([*specials, "<image>", "<global-img>", *grid])
    tokenizer.bos_token, tokenizer.eos_token = "<|im_start|>", "<end_of_utterance>"
    tokenizer.pad_token = "<|endoftext|>"
    text = LlamaConfig(
        **_TEXT,
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    vision = {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "image_size": 56,
        "patch_size": 14,
    }
    config = {
        "vision_config": vision,
        "text_config": text,
        "scale_factor": 2,
        "image_token_id": tokenizer.convert_tokens_to_ids("<image>"),
        "pad_token_id": tokenizer.pad_token_id,  # older transformers default to 128002
    }
    return tokenizer, config


# Images are cut into tiles of 56 px plus a global view: (56 / 14)² / 2² = 4 tokens each.
_TILES: dict[str, Any] = {"size": {"longest_edge": 112}, "max_image_size": {"longest_edge": 56}}
_IMAGE_SEQ_LEN = 4


def build_idefics3(folder: Path) -> Path:
    """SmolVLM (v1) is an Idefics3 model: SigLIP-style vision tower, pixel shuffle, Llama text."""
    from transformers import (
        Idefics3Config,
        Idefics3ForConditionalGeneration,
        Idefics3ImageProcessorPil,
        Idefics3Processor,
    )

    tokenizer, config = _idefics3_parts()
    model = Idefics3ForConditionalGeneration(Idefics3Config(**config)).eval()
    processor = Idefics3Processor(
        image_processor=Idefics3ImageProcessorPil(**_TILES),
        tokenizer=tokenizer,
        image_seq_len=_IMAGE_SEQ_LEN,
        chat_template=IDEFICS3_TEMPLATE,
    )
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def build_smolvlm(folder: Path) -> Path:
    """SmolVLM2's architecture; its processor wants a video part (torchvision) and num2words."""
    from transformers import (
        SmolVLMConfig,
        SmolVLMForConditionalGeneration,
        SmolVLMImageProcessorPil,
    )

    tokenizer, config = _idefics3_parts()
    model = SmolVLMForConditionalGeneration(SmolVLMConfig(**config)).eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    SmolVLMImageProcessorPil(**_TILES).save_pretrained(folder)
    (folder / "chat_template.jinja").write_text(IDEFICS3_TEMPLATE, encoding="utf-8")
    settings = {"processor_class": "SmolVLMProcessor", "image_seq_len": _IMAGE_SEQ_LEN}
    (folder / "processor_config.json").write_text(json.dumps(settings), encoding="utf-8")
    return folder


BUILDERS: dict[str, Callable[[Path], Path]] = {
    "qwen2-vl": build_qwen2_vl,
    "qwen2.5-vl": build_qwen2_5_vl,
    "llava": build_llava,
    "idefics3": build_idefics3,
    "smolvlm": build_smolvlm,
}


def build(kind: str, folder: Path) -> Path:
    """Build the tiny model `kind` (a key of BUILDERS) into `folder`, seeded, and return it."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(SEED)
    return BUILDERS[kind](folder)


# ----------------------------------------------------------------------- real Qwen2 tokenizer

LLAMA_CPP_SDIST = "llama-cpp-python==0.3.36"
GGUF_MEMBER = "vendor/llama.cpp/models/ggml-vocab-qwen2.gguf"
GGUF_NAME = "ggml-vocab-qwen2.gguf"


class Unavailable(Exception):
    """The real tokenizer cannot be had here (no PyPI, no `gguf`); tests skip with this reason."""


def cache_dir() -> Path:
    """Where slow test assets are kept between runs: $FIQABENCH_TEST_CACHE or ~/.cache."""
    root = os.environ.get("FIQABENCH_TEST_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "fiqabench-test"


def qwen2_tokenizer(cache: Path | None = None) -> PreTrainedTokenizerBase:
    """The real Qwen2 tokenizer (151,936 tokens) with Qwen2-VL's vision tokens.

    llama.cpp ships Qwen2's vocabulary as a GGUF test file inside the llama-cpp-python source
    package; it is downloaded and converted once per machine (about a minute), then the saved
    tokenizer loads in about a second.
    """
    cache = cache or cache_dir()
    saved = cache / "qwen2-tokenizer"
    if not (saved / "tokenizer.json").is_file():
        _convert(_gguf_file(cache), saved)
    from transformers import AutoTokenizer

    tokenizer: PreTrainedTokenizerBase = AutoTokenizer.from_pretrained(saved)
    return tokenizer


def _gguf_file(cache: Path) -> Path:
    target = cache / GGUF_NAME
    if target.is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as scratch:
        sdist = _download_sdist(Path(scratch))
        with tarfile.open(sdist) as archive:
            member = next((m for m in archive.getmembers() if m.name.endswith(GGUF_MEMBER)), None)
            source = archive.extractfile(member) if member is not None else None
            if source is None:
                raise Unavailable(f"{sdist.name} holds no {GGUF_MEMBER}")
            partial = Path(scratch) / GGUF_NAME
            partial.write_bytes(source.read())
        os.replace(partial, target)  # atomic: a concurrent run sees all of it or nothing
    return target


def _download_sdist(folder: Path) -> Path:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
    command += ["--quiet", "--dest", str(folder), LLAMA_CPP_SDIST]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise Unavailable(f"pip download {LLAMA_CPP_SDIST} failed: {exc}") from exc
    archives = sorted(folder.glob("llama_cpp_python-*.tar.gz"))
    if done.returncode != 0 or not archives:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise Unavailable(f"cannot download {LLAMA_CPP_SDIST} from PyPI: {last}")
    return archives[0]


def _convert(gguf: Path, saved: Path) -> None:
    try:
        import gguf as _  # noqa: F401  (transformers reads GGUF files through it)
    except ImportError as exc:
        raise Unavailable("the 'gguf' package is needed to read the Qwen2 vocabulary") from exc
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    tokenizer.add_special_tokens({"additional_special_tokens": list(QWEN_VISION_TOKENS)})
    with tempfile.TemporaryDirectory(dir=saved.parent, ignore_cleanup_errors=True) as scratch:
        tokenizer.save_pretrained(scratch)
        with contextlib.suppress(OSError):  # another run may have saved it first
            os.replace(scratch, saved)
