"""Errors a user can act on: printed as one line, never as a traceback."""

from __future__ import annotations

from pathlib import Path


class UserError(Exception):
    """A problem with the user's input (a file, an option, a name); the message says what to fix."""

    def __init__(self, message: str, *, path: str | Path | None = None, line: int | None = None):
        self.path = str(path) if path is not None else None
        self.line = line
        where = ""
        if self.path is not None:
            where = f"{self.path}:{line}: " if line is not None else f"{self.path}: "
        super().__init__(f"{where}{message}")


class MissingExtraError(UserError):
    """An optional dependency is not installed; the message names the extra that provides it."""

    def __init__(self, module: str, extra: str):
        super().__init__(
            f"this feature needs '{module}', which is not installed: "
            f"pip install 'fiqabench[{extra}]'"
        )
        self.module = module
        self.extra = extra


def describe_validation_error(exc: object) -> str:
    """One line from a pydantic ValidationError: the first problem and where it is."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return str(exc)
    problems = errors()
    if not problems:
        return str(exc)
    first = problems[0]
    location = ".".join(str(part) for part in first.get("loc", ()))
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"{location + ': ' if location else ''}{message}{more}"
