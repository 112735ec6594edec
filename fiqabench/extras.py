"""Lazy imports of optional dependencies, with a message naming the install extra."""

from __future__ import annotations

import importlib
from types import ModuleType

from fiqabench.errors import MissingExtraError


def require(module: str, extra: str) -> ModuleType:
    """Import `module` or raise a one-line error telling which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if exc.name is not None and module.split(".")[0] != exc.name.split(".")[0]:
            raise  # the module exists but one of its own imports is broken: show the real error
        raise MissingExtraError(module, extra) from exc
