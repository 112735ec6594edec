"""Text rules for submissions: plain identifiers, and free text without active markup.

The leaderboard site escapes everything it shows (Jinja autoescape); that is the boundary.
These rules are a second line that refuses a bundle with a clear message instead:

- Identifiers (model alias, runner, model id, revision, args keys, task and entry names,
  sample ids): 1 to 256 printable ASCII characters without `< > & " ' \\``, no leading or
  trailing space. Enough for hub ids, paths, `hf:org/name@rev`; never markup.
- Free text (every other string in results.json and samples.jsonl: responses, parsed answers,
  errors, meta, command lines): anything printable. Models legitimately write `<` (`<think>`
  blocks, "a < b"), so only markup that would run or load something if it were ever rendered
  raw is refused (script-capable and embedding elements, `on…=` handlers inside a tag,
  `javascript:` / `vbscript:` / `data:text/html` URLs, comments), along with control
  characters other than tab, newline and carriage return, and the bidirectional overrides
  that make displayed text read differently from what it is.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

from fiqabench.benchmark.results import RESULTS_FILE, SAMPLES_FILE, ResultsFile
from fiqabench.benchmark.schema import Record

IDENTIFIER_MAX = 256
_IDENTIFIER = re.compile(rf"[ -~]{{1,{IDENTIFIER_MAX}}}")
_NOT_IN_IDENTIFIER = frozenset("<>&\"'`")
_ACTIVE_ELEMENTS = (
    # Not `image`: vision models echo the `<image>` placeholder of their prompts.
    "script|style|iframe|frame|frameset|object|embed|applet|svg|math|img|picture|video"
    "|audio|source|track|link|meta|base|form|input|button|textarea|select|template|noscript"
    "|xmp|plaintext|noembed|noframes|portal|marquee|html|head|body"
)
_TAG_MARKUP = re.compile(
    rf"<\s*/?\s*(?:{_ACTIVE_ELEMENTS})(?![\w-])"  # an element that runs, loads or restyles
    r"|<[A-Za-z][^<>]*?\bon[a-z]+\s*="  # an event handler attribute inside a tag
    r"|<!--|<!\[CDATA\[",
    re.IGNORECASE,
)
_URL_MARKUP = re.compile(r"\b(?:javascript|vbscript)\s*:|\bdata\s*:\s*text/html", re.IGNORECASE)
_BAD_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_SHOWN = 60


def shown(value: str) -> str:
    """A value as it may safely appear in a message: escaped (no terminal codes), shortened."""
    text = ascii(value)
    return text if len(text) <= _SHOWN else f"{text[: _SHOWN - 4]}...{text[-1]}"


def printable(message: str) -> str:
    """A message with control and bidi characters escaped, safe to print on a terminal."""
    return _BAD_CHARACTERS.sub(lambda m: ascii(m.group())[1:-1], message)


def identifier_problem(value: str) -> str | None:
    """Why `value` is not a plain identifier, or None when it is one."""
    if not _IDENTIFIER.fullmatch(value):
        return f"is not 1 to {IDENTIFIER_MAX} printable ASCII characters"
    bad = sorted(_NOT_IN_IDENTIFIER.intersection(value))
    if bad:
        return f"contains {' '.join(bad)}, which identifiers may not hold"
    if value != value.strip():
        return "starts or ends with a space"
    return None


def free_text_problem(value: str) -> str | None:
    """Why `value` may not be shown even escaped, or None when it is acceptable free text."""
    character = _BAD_CHARACTERS.search(value)
    if character:
        return f"contains the control character U+{ord(character.group()):04X}"
    # Cheap substring tests first: the regexes are slow on long answers, which rarely need them.
    markup = _TAG_MARKUP.search(value) if "<" in value else None
    lowered = value.lower()
    if markup is None and ("script" in lowered or "text/html" in lowered):
        markup = _URL_MARKUP.search(value)
    if markup:
        return f"contains HTML or script markup {shown(markup.group())}"
    return None


def strings(document: Any) -> Iterator[tuple[str, str]]:
    """Every string in a JSON document, keys included, with its location (`a.b[2].c`)."""
    stack: list[tuple[Any, str]] = [(document, "")]
    while stack:  # iterative: a deeply nested document must not exhaust the Python stack
        value, path = stack.pop()
        if isinstance(value, str):
            yield path, value
        elif isinstance(value, dict):
            for key, item in reversed(value.items()):
                yield f"{path} (a key)".lstrip(), str(key)
                stack.append((item, f"{path}.{key}" if path else str(key)))
        elif isinstance(value, list):
            stack.extend((item, f"{path}[{i}]") for i, item in reversed(list(enumerate(value))))


def _location(path: str) -> str:
    text = ascii(path)[1:-1]  # escaped: a hostile key must not reach the terminal raw
    return text if len(text) <= 2 * _SHOWN else f"{text[: 2 * _SHOWN - 3]}..."


def _identifiers(
    results: ResultsFile, records: Sequence[tuple[int, Record]]
) -> Iterator[tuple[str, str]]:
    model = results.manifest.model
    yield f"{RESULTS_FILE}: manifest.model.alias", model.alias
    yield f"{RESULTS_FILE}: manifest.model.runner", model.runner
    yield f"{RESULTS_FILE}: manifest.model.model_id", model.model_id
    if model.revision is not None:
        yield f"{RESULTS_FILE}: manifest.model.revision", model.revision
    for key in model.args:
        yield f"{RESULTS_FILE}: manifest.model.args (a key)", key
    for index, task in enumerate(results.manifest.tasks):
        yield f"{RESULTS_FILE}: manifest.tasks[{index}].name", task.name
    for name, entry in results.results.items():
        yield f"{RESULTS_FILE}: results (a key)", name
        yield f"{RESULTS_FILE}: results.{name}.task", entry.task
        yield f"{RESULTS_FILE}: results.{name}.model", entry.model
        yield f"{RESULTS_FILE}: results.{name}.model_id", entry.model_id
        if entry.revision is not None:
            yield f"{RESULTS_FILE}: results.{name}.revision", entry.revision
    for line, record in records:
        yield f"{SAMPLES_FILE}:{line}: task", record.task
        yield f"{SAMPLES_FILE}:{line}: sample_id", record.sample_id


def text_problems(
    results: ResultsFile,
    results_document: Any,
    records: Sequence[tuple[int, Record]],
    record_documents: Sequence[tuple[int, Any]],
    limit: int = 20,
) -> list[str]:
    """Identifiers that are not plain, and free text with active markup; at most `limit`."""
    problems: list[str] = []
    flagged: set[str] = set()  # one problem per location is enough

    def found(where: str, value: str, problem: str | None) -> bool:
        if problem is not None and where not in flagged:
            flagged.add(where)
            problems.append(f"{_location(where)} {shown(value)} {problem}")
        return len(problems) >= limit

    for where, value in _identifiers(results, records):
        if found(where, value, identifier_problem(value)):
            return problems
    sources = [(RESULTS_FILE, results_document)] + [
        (f"{SAMPLES_FILE}:{line}", document) for line, document in record_documents
    ]
    for member, document in sources:
        for where, value in strings(document):
            where = f"{member}: {where}" if where else member
            if found(where, value, free_text_problem(value)):
                return problems
    return problems
