"""Prompt templates: Jinja rendered in a sandbox, with undefined variables as errors."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from fiqabench.errors import UserError

BUILTIN_PROMPTS = Path(__file__).parent / "prompts"


def _environment() -> SandboxedEnvironment:
    # Sandboxed because task folders come from users; StrictUndefined so a typo in a template
    # fails loudly instead of rendering an empty string into every prompt.
    return SandboxedEnvironment(
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )


_ENV = _environment()


@dataclass(frozen=True)
class PromptTemplate:
    path: Path
    source: str

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.source.encode()).hexdigest()

    @cached_property
    def _compiled(self) -> jinja2.Template:
        return _ENV.from_string(self.source)

    def render(self, **variables: Any) -> str:
        try:
            return self._compiled.render(**variables).strip()
        except jinja2.UndefinedError as exc:
            raise UserError(f"template variable error: {exc.message}", path=self.path) from exc
        except jinja2.TemplateSyntaxError as exc:
            raise UserError(
                f"template syntax error: {exc.message}", path=self.path, line=exc.lineno
            ) from exc
        except jinja2.exceptions.SecurityError as exc:
            raise UserError(f"template not allowed in the sandbox: {exc}", path=self.path) from exc


def load_template(name: str, base_dir: Path) -> PromptTemplate:
    """Find `name` beside the task spec first, then among the built-in prompts; parse it once."""
    for folder in (base_dir, BUILTIN_PROMPTS):
        path = (folder / name).resolve()
        if path.is_file():
            source = path.read_text(encoding="utf-8")
            try:
                _ENV.parse(source)
            except jinja2.TemplateSyntaxError as exc:
                raise UserError(
                    f"template syntax error: {exc.message}", path=path, line=exc.lineno
                ) from exc
            return PromptTemplate(path=path, source=source)
    raise UserError(
        f"template '{name}' not found beside the task spec or among built-in prompts", path=base_dir
    )
