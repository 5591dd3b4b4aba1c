"""The page itself: a Jinja2 environment with autoescaping on (every value from the CSV is escaped by
Jinja, the rows' JSON by its ``tojson`` filter), the template and the page's script and style
loaded as package data, and the files written: ``report.html`` (atomically) and, in its folder,
``report.js`` and ``report.css``.

The page is UTF-8 text: a file name that is not UTF-8 (kept by ``surrogateescape`` where it is read,
so that it still names its file) is shown with U+FFFD in its place (``table.readable``, applied to the
rendered page, the rows' JSON included: that is written as text, not as ``\\u`` escapes).

The page loads nothing but those two files and the pictures in its folder, by relative paths: it
works offline from ``file://``, where Chromium refuses ``fetch()`` of local files (hence the rows
inline as JSON, not a data file fetched).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from ..atomic import atomic_write
from ..errors import RadnError
from .table import readable

STATIC = ("report.js", "report.css")


def environment():
    """The Jinja2 environment of the report templates (autoescape on, undefined names are errors)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("radn_cli.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    # tojson writes characters, not \u escapes (its <, >, & and ' stay escaped): a lone surrogate in
    # the JSON is then one that render_page replaces
    env.policies["json.dumps_kwargs"] = {"sort_keys": True, "ensure_ascii": False}
    return env


def render_page(context: dict[str, Any]) -> str:
    """The page, with any lone surrogate (a file name that is not UTF-8) shown as U+FFFD."""
    return readable(environment().get_template("report.html.j2").render(**context))


def _static(name: str) -> bytes:
    return (resources.files("radn_cli.report") / "static" / name).read_bytes()


def write_report(output: Path, context: dict[str, Any], folder: Path) -> None:
    """Render the page to ``output`` and put its script and style in ``folder`` (which exists)."""
    html = render_page(context)
    try:
        for name in STATIC:
            (folder / name).write_bytes(_static(name))
        with atomic_write(output) as temporary:
            temporary.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise RadnError(f"cannot write the report ({exc.strerror or exc})", output) from None
