"""What every page shares: the Jinja2 environment, atomic writes, value formatting."""

from __future__ import annotations

import functools
import json
import os
import re
from pathlib import Path
from typing import Any

import jinja2

MISSING = "—"

# Every page carries this marker, so a re-render can tell its own stale pages
# from files someone else put next to them.
GENERATOR = "gradfuzz reports"


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("reports", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["count"] = count
    env.globals["GENERATOR"] = GENERATOR
    return env


def write_page(path: Path, template: str, **context: Any) -> Path:
    """Render ``template`` into ``path`` atomically: a browser or a concurrent
    render never sees half a page."""
    html = environment().get_template(template).render(**context)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_text(html, encoding="utf-8")
    os.replace(partial, path)
    return path


def is_generated(path: Path) -> bool:
    """Whether ``path`` is a page these templates wrote."""
    try:
        with path.open(encoding="utf-8", errors="replace") as page:
            return f'content="{GENERATOR}"' in page.read(1024)
    except OSError:
        return False


def slugify(text: str, used: set[str]) -> str:
    """A file-name-safe slug of ``text`` not yet in ``used`` (and now in it).

    The same words the campaign names its files with: ``gradient|mul|float32``
    -> ``gradient-mul-float32``; a collision gets ``-2``, ``-3``, ...
    """
    base = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "item"
    slug, n = base, 1
    while slug in used:
        n += 1
        slug = f"{base}-{n}"
    used.add(slug)
    return slug


def meta_rows(meta: dict[str, Any], first: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``meta.json`` as (label, text) rows: the ``first`` keys under their
    labels, in that order, then every other key as it is."""
    rest = dict(meta)
    rows = [(label, text(rest.pop(key, None))) for key, label in first]
    rows += [(key, text(value)) for key, value in rest.items()]
    return rows


def text(value: Any, missing: str = MISSING) -> str:
    if value is None or value == "":
        return missing
    if isinstance(value, dict):
        return ", ".join(f"{key}: {text(item)}" for key, item in value.items())
    if isinstance(value, list):
        return json.dumps(value)
    return str(value)


def count(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else text(value)


def seconds(value: Any) -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return text(value)
    if value < 120:
        return f"{value:.1f} s"
    minutes, rest = divmod(round(value), 60)
    if minutes < 120:
        return f"{minutes} min {rest} s"
    return f"{minutes // 60} h {minutes % 60} min"


def number(value: Any) -> int | float | None:
    """``value`` if it is a real number (not a bool), else None."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    return None
