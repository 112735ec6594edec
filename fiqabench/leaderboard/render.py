"""The site's Jinja environment: every value is escaped unless it is our own SVG `Markup`."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


@cache
def environment() -> Environment:
    """Autoescaping for every template, and an error (not an empty string) for a missing value."""
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def relative_root(page: str) -> str:
    """The prefix from a page (a path from the site root) back to the root: `../` per folder."""
    return "../" * page.count("/")


def render_page(template: str, page: str, **context: object) -> str:
    """Render a template for the page at `page`; links in it are relative, so file:// works."""
    return (
        environment().get_template(template).render(root=relative_root(page), page=page, **context)
    )
