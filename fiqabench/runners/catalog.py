"""Model catalog: aliases to runners, and the factory that builds a runner for an alias."""

from __future__ import annotations

import difflib
import importlib
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fiqabench.errors import UserError, describe_validation_error
from fiqabench.runners.base import ModelIdentity, Runner

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
}
# Ad-hoc model form: `scores:<path.csv>` evaluates scores imported from that file.
ADHOC_SCORES_PREFIX = "scores:"


class CatalogEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    alias: str
    runner: str
    model_id: str
    revision: str | None = None
    description: str = ""
    args: dict[str, Any] = Field(default_factory=dict)

    @property
    def extra(self) -> str | None:
        return RUNNERS[self.runner][2]


@cache
def load_catalog(path: Path = CATALOG_PATH) -> dict[str, CatalogEntry]:
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    entries = {}
    for alias, fields in document.items():
        try:
            entry = CatalogEntry.model_validate({"alias": alias, **fields})
        except ValidationError as exc:
            raise UserError(
                f"catalog entry '{alias}': {describe_validation_error(exc)}", path=path
            ) from exc
        if entry.runner not in RUNNERS:
            raise UserError(f"catalog entry '{alias}': unknown runner '{entry.runner}'", path=path)
        entries[alias] = entry
    return entries


def resolve(alias: str) -> CatalogEntry:
    catalog = load_catalog()
    if alias not in catalog:
        close = difflib.get_close_matches(alias, list(catalog), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise UserError(
            f"unknown model '{alias}'{hint}; `fiqabench models list` shows the known models"
        )
    return catalog[alias]


def build_runner(alias: str, *, seed: int = 0) -> Runner:
    if alias.startswith(ADHOC_SCORES_PREFIX):
        from fiqabench.runners.imported_scores import adhoc_runner

        return adhoc_runner(alias, alias.removeprefix(ADHOC_SCORES_PREFIX))
    entry = resolve(alias)
    module_name, class_name, _ = RUNNERS[entry.runner]
    # Runner modules import their heavy libraries themselves, through fiqabench.extras.require.
    module = importlib.import_module(module_name)
    args = dict(entry.args)
    if entry.runner == "random":
        args["seed"] = seed
    identity = ModelIdentity(
        alias=alias,
        runner=entry.runner,
        model_id=entry.model_id,
        revision=entry.revision,
        args=args,
    )
    runner: Runner = getattr(module, class_name)(identity, **args)
    return runner
