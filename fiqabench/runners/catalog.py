"""Model catalog: aliases to runners, the ad-hoc model forms, and the factory that builds runners.

A model is named (`fiqabench eval --model NAME`) in one of these forms:
- a catalog alias (`catalog.yaml`, listed by `fiqabench models list`);
- `hf:<hub id | local folder | alias>` and `vllm:<...>`: a local model on transformers or on vLLM.
  An alias of a local catalog entry lends its model id, revision and args, so every catalog model
  also runs on the other engine (`vllm:qwen2.5-vl-72b`);
- `openai:<model>` and `anthropic:<model>`: an API model, with `--base-url` / `--api-key-env` for
  OpenAI-compatible endpoints;
- `scores:<file.csv>`: quality scores computed elsewhere.

The identity (runner, model id, revision, args) keys the record store, so it must change whenever
the answers could: a local folder has no revision, so its identity carries a fingerprint of the
folder's files instead; arguments that only change speed or plumbing (`OPERATIONAL_ARGS`: batch
size, concurrency, retries, the API key's variable) stay out of it, so a resumed run with another
batch size reuses its answers.

Generation settings come from the task. A catalog entry's `max_new_tokens` is a hard cap: a request
gets min(task's max_new_tokens, cap); nothing else in the task's settings is overridden.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.util
import inspect
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any, cast

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fiqabench.benchmark.schema import Request, Response
from fiqabench.errors import MissingExtraError, UserError, describe_validation_error
from fiqabench.runners.base import LevelScorer, ModelIdentity, Runner

CATALOG_PATH = Path(__file__).with_name("catalog.yaml")

# runner name -> (module, class, install extra it needs or None); imported only when used.
RUNNERS: dict[str, tuple[str, str, str | None]] = {
    "random": ("fiqabench.runners.random_baseline", "RandomRunner", None),
    "classical": ("fiqabench.runners.classical", "ClassicalRunner", "classical"),
    "classical_detector": (
        "fiqabench.runners.classical_detector",
        "ClassicalDetectorRunner",
        "classical",
    ),
    "scores": ("fiqabench.runners.imported_scores", "ImportedScoresRunner", None),
    "hf": ("fiqabench.runners.hf", "HFRunner", "hf"),
    "vllm": ("fiqabench.runners.vllm_runner", "VLLMRunner", "vllm"),
    "openai": ("fiqabench.runners.openai_runner", "OpenAIRunner", "api"),
    "anthropic": ("fiqabench.runners.anthropic_runner", "AnthropicRunner", "api"),
    "lmms": ("fiqabench.runners.lmms", "LmmsEvalRunner", "lmms"),
}
# The heavy modules each runner needs, checked before its module is imported so that a missing
# extra is one line naming it, not a traceback from deep inside the runner.
REQUIRED_MODULES: dict[str, tuple[str, ...]] = {
    "hf": ("torch", "transformers"),
    "vllm": ("vllm",),
    "openai": ("openai",),
    "anthropic": ("anthropic",),
    "lmms": ("lmms_eval",),
}
LOCAL_RUNNERS = frozenset({"hf", "vllm"})
API_RUNNERS = frozenset({"openai", "anthropic"})
# Ad-hoc model forms, `<prefix>:<target>`; `scores:` is handled by runners.imported_scores.
ADHOC_SCORES_PREFIX = "scores:"
ADHOC_PREFIXES = ("hf", "vllm", "openai", "anthropic")
# CLI overrides each runner accepts (`revision` lands in the identity, the rest in args).
OVERRIDES: dict[str, frozenset[str]] = {
    "hf": frozenset({"batch_size", "revision"}),
    "vllm": frozenset({"batch_size", "revision"}),
    "lmms": frozenset({"batch_size"}),
    "openai": frozenset({"base_url", "api_key_env"}),
    "anthropic": frozenset({"base_url", "api_key_env"}),
}
KNOWN_OVERRIDES = frozenset().union(*OVERRIDES.values())
# Arguments that change speed or plumbing, never an answer: kept out of the identity.
OPERATIONAL_ARGS = frozenset(
    {
        "batch_size",
        "concurrency",
        "timeout_s",
        "max_retries",
        "max_requests",
        "max_tokens_budget",
        "api_key_env",
        "gpu_memory_utilization",
        "tensor_parallel_size",
    }
)
# Local-model args that both HFRunner and VLLMRunner accept, so an alias can lend them to either.
PORTABLE_ARGS = frozenset(
    {"dtype", "max_image_side", "min_pixels", "max_pixels", "trust_remote_code", "batch_size"}
)
ALIAS_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]*")
HUB_ID_PATTERN = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
FINGERPRINT_ARG = "folder_fingerprint"
CAP_ARG = "max_new_tokens_cap"


class CatalogEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    alias: str
    runner: str
    model_id: str
    revision: str | None = None
    description: str = ""
    args: dict[str, Any] = Field(default_factory=dict)
    # Hard cap on new tokens; the task's own max_new_tokens wins when it is smaller.
    max_new_tokens: int | None = Field(default=None, ge=1)

    @property
    def extra(self) -> str | None:
        return RUNNERS[self.runner][2]


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses a key given twice (PyYAML keeps the last one silently)."""


def _unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"'{key}' is defined twice", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


@cache
def load_catalog(path: Path = CATALOG_PATH) -> dict[str, CatalogEntry]:
    try:
        document = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"invalid catalog: {' '.join(str(exc).split())}", path=path) from None
    entries = {}
    for alias, fields in document.items():
        entry = _entry(str(alias), fields, path)
        entries[entry.alias] = entry
    return entries


def _entry(alias: str, fields: Any, path: Path) -> CatalogEntry:
    if not ALIAS_PATTERN.fullmatch(alias):
        raise UserError(
            f"catalog entry '{alias}': an alias is lowercase letters, digits, '.', '_' and '-'",
            path=path,
        )
    try:
        entry = CatalogEntry.model_validate({"alias": alias, **(fields or {})})
    except (ValidationError, TypeError) as exc:
        raise UserError(
            f"catalog entry '{alias}': {describe_validation_error(exc)}", path=path
        ) from exc
    if entry.runner not in RUNNERS:
        raise UserError(f"catalog entry '{alias}': unknown runner '{entry.runner}'", path=path)
    return entry


def resolve(alias: str) -> CatalogEntry:
    catalog = load_catalog()
    if alias not in catalog:
        close = difflib.get_close_matches(alias, list(catalog), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise UserError(
            f"unknown model '{alias}'{hint}; `fiqabench models list` shows the known models, "
            "and hf:, vllm:, openai:, anthropic:, scores: name models outside it"
        )
    return catalog[alias]


# ----------------------------------------------------------------------------- specs


@dataclass(frozen=True)
class RunnerSpec:
    """What to build: the runner, the model, its constructor args and identity-only extras."""

    runner: str
    model_id: str
    revision: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    identity_extras: dict[str, Any] = field(default_factory=dict)
    max_new_tokens: int | None = None

    def identity(self, alias: str) -> ModelIdentity:
        args = {k: v for k, v in self.args.items() if k not in OPERATIONAL_ARGS}
        args.update(self.identity_extras)
        if self.max_new_tokens is not None:
            args[CAP_ARG] = self.max_new_tokens
        return ModelIdentity(
            alias=alias,
            runner=self.runner,
            model_id=self.model_id,
            revision=self.revision,
            args=args,
        )


def _from_entry(entry: CatalogEntry, runner: str | None = None) -> RunnerSpec:
    return RunnerSpec(
        runner=runner or entry.runner,
        model_id=entry.model_id,
        revision=entry.revision,
        args=dict(entry.args),
        max_new_tokens=entry.max_new_tokens,
    )


def parse_adhoc(name: str) -> tuple[str, str] | None:
    """(runner, target) for `hf:`, `vllm:`, `openai:` and `anthropic:` names, else None."""
    prefix, colon, target = name.partition(":")
    if not colon or prefix not in ADHOC_PREFIXES:
        return None
    return prefix, target.strip()


def resolve_spec(name: str) -> RunnerSpec:
    """The spec for a catalog alias or an ad-hoc form (not `scores:`)."""
    if name in load_catalog():
        return _from_entry(load_catalog()[name])
    adhoc = parse_adhoc(name)
    if adhoc is None:
        return _from_entry(resolve(name))  # raises the unknown-model error with suggestions
    runner, target = adhoc
    if not target:
        raise UserError(f"model '{name}' names no model (write e.g. {runner}:MODEL)")
    if runner in API_RUNNERS:
        return RunnerSpec(runner=runner, model_id=target)
    return _local_spec(runner, target)


def _local_spec(runner: str, target: str) -> RunnerSpec:
    """`hf:`/`vllm:` target: a catalog alias, then a local folder, then a hub id."""
    entry = load_catalog().get(target)
    if entry is not None:
        if entry.runner not in LOCAL_RUNNERS:
            raise UserError(
                f"'{target}' is a '{entry.runner}' model; {runner}: takes a local model "
                "(a hub id, a folder, or the alias of an hf or vllm entry)"
            )
        return _from_entry(entry, runner)
    folder = Path(target).expanduser()
    if folder.is_dir():
        return RunnerSpec(
            runner=runner,
            model_id=str(folder.resolve()),
            identity_extras={FINGERPRINT_ARG: folder_fingerprint(folder)},
        )
    if HUB_ID_PATTERN.fullmatch(target):
        return RunnerSpec(runner=runner, model_id=target)
    raise UserError(
        f"'{target}' is neither a folder nor a Hugging Face hub id (organisation/name) "
        "nor a catalog alias"
    )


def with_overrides(
    spec: RunnerSpec, overrides: Mapping[str, object] | None, name: str
) -> RunnerSpec:
    """Merge CLI overrides into the spec; a None value means 'not given'."""
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = set(given) - KNOWN_OVERRIDES
    if unknown:
        raise ValueError(f"unknown override(s) {sorted(unknown)}")
    allowed = OVERRIDES.get(spec.runner, frozenset())
    for key in given:
        if key not in allowed:
            raise UserError(
                f"--{key.replace('_', '-')} does not apply to model '{name}' "
                f"(runner '{spec.runner}')"
            )
    if "revision" in given and FINGERPRINT_ARG in spec.identity_extras:
        raise UserError(f"model '{name}' is a local folder: it has no revisions")
    revision = str(given.pop("revision")) if "revision" in given else spec.revision
    return replace(spec, revision=revision, args={**spec.args, **given})


# ----------------------------------------------------------------------------- building


def build_runner(
    alias: str, *, seed: int = 0, overrides: Mapping[str, object] | None = None
) -> Runner:
    """The runner for a model name (see the module docstring for the forms it accepts)."""
    if alias.startswith(ADHOC_SCORES_PREFIX):
        with_overrides(RunnerSpec(runner="scores", model_id=""), overrides, alias)
        from fiqabench.runners.imported_scores import adhoc_runner

        return adhoc_runner(alias, alias.removeprefix(ADHOC_SCORES_PREFIX))
    spec = with_overrides(resolve_spec(alias), overrides, alias)
    if spec.runner == "random":
        spec = replace(spec, args={**spec.args, "seed": seed})
    check_extra(spec.runner)
    cls = runner_class(spec.runner)
    check_arguments(cls, spec, alias)
    runner: Runner = cls(spec.identity(alias), **spec.args)
    if spec.max_new_tokens is None:
        return runner
    if isinstance(runner, LevelScorer):
        return CappedScorer(runner, spec.max_new_tokens)
    return CappedRunner(runner, spec.max_new_tokens)


def check_extra(runner: str) -> None:
    """Raise MissingExtraError naming the extra when a module the runner needs is missing."""
    extra = RUNNERS[runner][2]
    for module in REQUIRED_MODULES.get(runner, ()):
        if extra is not None and not _installed(module):
            raise MissingExtraError(module, extra)


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken or stubbed module: let the import tell
        return True


def runner_class(runner: str) -> type[Any]:
    module_name, class_name, _ = RUNNERS[runner]
    # Runner modules import their heavy libraries themselves, through fiqabench.extras.require.
    cls: type[Any] = getattr(importlib.import_module(module_name), class_name)
    return cls


def check_arguments(cls: type[Any], spec: RunnerSpec, name: str) -> None:
    """A one-line error for an argument the runner does not take (a catalog typo, usually)."""
    parameters = inspect.signature(cls).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return
    accepted = {p.name for p in parameters}
    unknown = sorted(set(spec.args) - accepted)
    if unknown:
        raise UserError(
            f"model '{name}': runner '{spec.runner}' takes no argument {', '.join(unknown)}"
        )


# ----------------------------------------------------------------------------- fingerprints

_WHOLE_FILE_LIMIT = 16 * 2**20
_SAMPLE = 2**20


def folder_fingerprint(folder: Path) -> str:
    """sha256 over a model folder's files, cheap enough for multi-GB weights.

    Files up to 16 MiB (configs, tokenizers, chat templates, weight indexes) are hashed whole;
    larger ones (weights) by size and their first and last MiB, which a retrained model changes
    even when its index and shapes stay the same. Hidden files and folders are skipped.
    """
    digest = hashlib.sha256()
    for path in _model_files(folder):
        size = path.stat().st_size
        digest.update(f"{path.relative_to(folder).as_posix()}\0{size}\0".encode())
        with path.open("rb") as handle:
            if size <= _WHOLE_FILE_LIMIT:
                digest.update(handle.read())
            else:
                digest.update(handle.read(_SAMPLE))
                handle.seek(size - _SAMPLE)
                digest.update(handle.read(_SAMPLE))
    return digest.hexdigest()


def _model_files(folder: Path) -> list[Path]:
    return sorted(
        path
        for path in folder.rglob("*")
        if path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    )


# ----------------------------------------------------------------------------- token cap


class CappedRunner:
    """Applies a catalog entry's hard cap on new tokens to every request it passes on."""

    def __init__(self, inner: Runner, max_new_tokens: int):
        self.inner = inner
        self.identity = inner.identity
        self.max_new_tokens = max_new_tokens

    def capped(self, request: Request) -> Request:
        limit = min(request.generation.max_new_tokens, self.max_new_tokens)
        if limit == request.generation.max_new_tokens:
            return request
        generation = request.generation.model_copy(update={"max_new_tokens": limit})
        return request.model_copy(update={"generation": generation})

    def generate(self, requests: Sequence[Request]) -> Iterator[tuple[Request, Response]]:
        # The key (identity and the task's settings) stays, so answers map back to the originals.
        originals = {request.key: request for request in requests}
        for request, response in self.inner.generate([self.capped(r) for r in requests]):
            yield originals.get(request.key, request), response

    def close(self) -> None:
        self.inner.close()


class CappedScorer(CappedRunner):
    """A capped runner that also scores levels; one token is read, so nothing is capped."""

    def score_levels(
        self,
        requests: Sequence[Request],
        levels: Sequence[str],
        weights: Sequence[float] | None = None,
    ) -> Iterator[tuple[Request, Response]]:
        yield from cast(LevelScorer, self.inner).score_levels(requests, levels, weights)
