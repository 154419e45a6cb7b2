"""Jinja2 templates for step scripts and stanza fragments (the files under templates/).

Templates hold the shell a maintainer would write; Python code chooses a template and
fills it with facts. StrictUndefined: a template naming a value nobody passed is a bug,
not an empty string in a test script.
"""

from __future__ import annotations

import shlex
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

TEMPLATE_DIR = Path(__file__).resolve().parent.parent.parent / "templates"


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # noqa: S701 - shell and YAML, not HTML
    )
    env.filters["shquote"] = shlex.quote
    return env


def render(name: str, **values: Any) -> str:
    """Render ``templates/<name>``; the result ends with exactly one newline."""
    return environment().get_template(name).render(**values).rstrip("\n") + "\n"
