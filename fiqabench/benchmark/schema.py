"""Typed records that flow through the harness: items, requests, responses, scored records."""

from __future__ import annotations

import string
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

QuestionType = Literal["single", "multi", "tf", "open", "describe"]
JUDGED_TYPES: tuple[QuestionType, ...] = ("open", "describe")  # scored by an LLM judge
DESCRIBE_CRITERIA = ("completeness", "precision", "relevance")  # Q-Bench A2's, 0-2 each
Scope = Literal["global", "local"]
Status = Literal["ok", "parse_fail", "error", "unscored"]
STATUSES: tuple[Status, ...] = ("ok", "parse_fail", "error", "unscored")
LETTERS = string.ascii_uppercase

_TF_WORDS = {"true": True, "yes": True, "false": False, "no": False}


def letter(index: int) -> str:
    return LETTERS[index]


class DataItem(BaseModel):
    """A line of a task's JSONL data: an `id` (numbers accepted) plus any extra fields."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: str

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class ImageItem(DataItem):
    """An image of a scalar face-quality task; `subject` is the identity, when known."""

    image: str
    subject: str | None = None


class QAItem(DataItem):
    """One portrait Q&A item, as written in a task's JSONL file (one JSON object per line).

    `image` paths are relative to the data file. `answer` is a letter for `single`, a list of
    letters for `multi`, a boolean for `tf`, and reference text for `open` and `describe` (a
    reference description of the image's quality), both scored by an LLM judge.
    """

    image: str | list[str]
    question: str
    type: QuestionType
    options: list[str] | None = None
    answer: str | list[str] | bool
    scope: Scope = "global"
    dimension: str = ""
    subdimension: str = ""
    source: str = ""

    @property
    def images(self) -> list[str]:
        return [self.image] if isinstance(self.image, str) else list(self.image)

    @property
    def letters(self) -> list[str]:
        return [letter(i) for i in range(len(self.options or []))]

    @model_validator(mode="after")
    def _answer_matches_type(self) -> QAItem:
        if not self.images:
            raise ValueError("'image' must name at least one file")
        if self.type in ("single", "multi"):
            if not self.options or len(self.options) < 2:
                raise ValueError(f"a '{self.type}' item needs 'options' (2 to 26 strings)")
            if len(self.options) > len(LETTERS):
                raise ValueError("at most 26 options")
            allowed = set(self.letters)
            answers = [self.answer] if self.type == "single" else self.answer
            if self.type == "single" and not isinstance(self.answer, str):
                raise ValueError("a 'single' item's 'answer' must be one letter, e.g. \"B\"")
            if self.type == "multi" and (not isinstance(self.answer, list) or not self.answer):
                raise ValueError("a 'multi' item's 'answer' must be a non-empty list of letters")
            assert isinstance(answers, list)
            bad = [a for a in answers if a not in allowed]
            if bad:
                raise ValueError(f"answer {bad} is not among the option letters {sorted(allowed)}")
        elif self.type == "tf":
            if not isinstance(self.answer, bool):
                raise ValueError("a 'tf' item's 'answer' must be true or false")
        elif not isinstance(self.answer, str) or not self.answer.strip():
            raise ValueError(f"an '{self.type}' item's 'answer' must be the reference text")
        return self

    @field_validator("answer", mode="before")
    @classmethod
    def _normalise_answer(cls, value: Any, info: ValidationInfo) -> Any:
        kind = info.data.get("type")
        if kind == "tf" and isinstance(value, str) and value.strip().lower() in _TF_WORDS:
            return _TF_WORDS[value.strip().lower()]
        if kind == "multi" and isinstance(value, list):
            return sorted({str(v).strip().upper() for v in value})
        if kind == "single" and isinstance(value, str):
            return value.strip().upper()
        return value


class AnswerSpace(BaseModel):
    """What shape of answer a request expects; lets baselines answer without knowing the task.

    `score` requests want a JSON object with a number under `key` in [low, high], or, when
    `levels` is set, one digit 1..levels; `flags` requests want a JSON object with a number
    under `key` and a boolean under each of `flags`.
    """

    model_config = ConfigDict(frozen=True)

    type: QuestionType | Literal["score", "flags"]
    letters: tuple[str, ...] = ()
    key: str | None = None
    low: float = 0.0
    high: float = 100.0
    levels: int | None = None
    flags: tuple[str, ...] = ()


class TextPart(BaseModel):
    model_config = ConfigDict(frozen=True)
    type: Literal["text"] = "text"
    text: str


class ImagePart(BaseModel):
    """An image by path; `sha256` is the hash of the file's bytes, which keys the record store."""

    model_config = ConfigDict(frozen=True)
    type: Literal["image"] = "image"
    path: str
    sha256: str


ContentPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]


class Message(BaseModel):
    model_config = ConfigDict(frozen=True)
    role: Literal["system", "user", "assistant"]
    content: tuple[ContentPart, ...]


class GenerationConfig(BaseModel):
    """Decoding settings; greedy by default so that the same input gives the same output."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    max_new_tokens: int = Field(default=128, ge=1)
    temperature: float = Field(default=0.0, ge=0.0)
    top_p: float | None = None
    stop: tuple[str, ...] = ()


class LevelScoring(BaseModel):
    """Read the next-token probabilities of `levels` instead of generating text.

    The score is the expectation of `weights` under the probabilities renormalised over the
    levels (Q-Align's way); it is a different protocol from parsing a greedy answer.
    """

    model_config = ConfigDict(frozen=True)
    levels: tuple[str, ...]
    weights: tuple[float, ...]


class Request(BaseModel):
    """Everything one model call needs. `key` is the content hash that keys the record store."""

    model_config = ConfigDict(frozen=True)
    key: str
    sample_id: str
    task: str
    messages: tuple[Message, ...]
    generation: GenerationConfig
    answer_space: AnswerSpace | None = None
    level_scoring: LevelScoring | None = None

    @property
    def images(self) -> list[ImagePart]:
        return [p for m in self.messages for p in m.content if isinstance(p, ImagePart)]


class Usage(BaseModel):
    input_tokens: int = 0
    output_tokens: int = 0


class Response(BaseModel):
    """What a runner returns for one request. A set `error` means the call failed: no answer.

    `score` is set by runners that produce a quality score directly rather than text to parse
    (classical IQA baselines, imported scores, logit-based level scoring).
    """

    text: str | None = None
    score: float | None = None
    logprobs: dict[str, float] | None = None
    usage: Usage | None = None
    latency_s: float = 0.0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and (self.text is not None or self.score is not None)


class Record(BaseModel):
    """One sample's outcome, as written to samples.jsonl."""

    sample_id: str
    task: str
    request_key: str | None = None
    prompt_hash: str | None = None
    response: str | None = None
    parsed: Any = None
    parse_stage: str | None = None
    correct: bool | None = None
    score: float | None = None
    status: Status
    error: str | None = None
    latency_s: float | None = None
    cached: bool = False
    meta: dict[str, Any] = Field(default_factory=dict)
    extractor_reply: str | None = None  # what an LLM extractor answered, when one read it


class ModelIdentity(BaseModel):
    """Names a model exactly; everything here except `alias` keys the record store."""

    model_config = ConfigDict(frozen=True)
    alias: str
    runner: str
    model_id: str
    revision: str | None = None
    args: dict[str, Any] = Field(default_factory=dict)

    def fingerprint(self) -> dict[str, Any]:
        return {
            "runner": self.runner,
            "model_id": self.model_id,
            "revision": self.revision,
            "args": self.args,
        }
