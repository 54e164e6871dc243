"""What an executed notebook displayed, as an HTML fragment for a report page.

Outputs only, in order: no code, no prompts, no parameters. Left out: cells tagged
``tradeassist-notebook-only`` (and any tag in ``drop_tags``), outputs whose metadata says
``{"tradeassist": {"report": false}}`` (a heading the page draws itself), outputs of a MIME
type in ``drop_mime`` (the result a notebook publishes for the runner), and what the kernel
wrote to stderr (warnings are for developers). For each output the richest form a static
page can show: HTML, SVG, PNG/JPEG, markdown, then plain text; an error as its one line.

Pure: a notebook as a mapping (``nbformat``'s node is one) in, HTML out. Markdown is rendered
with mistune when it is installed (it comes with nbconvert), else shown as text.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from typing import Any

NOTEBOOK_ONLY = "tradeassist-notebook-only"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value or "")


def markdown_html(source: str) -> str:
    try:
        import mistune  # light; present with nbconvert
    except ImportError:  # pragma: no cover - nbconvert brings it
        return f"<pre>{html.escape(source)}</pre>"
    return str(mistune.html(source))


def _data_html(data: Mapping[str, Any]) -> str:
    if "text/html" in data:
        return _text(data["text/html"])
    if "image/svg+xml" in data:
        return _text(data["image/svg+xml"])
    for mime in ("image/png", "image/jpeg"):
        if mime in data:
            encoded = _text(data[mime]).replace("\n", "")
            return f'<img alt="" src="data:{mime};base64,{encoded}">'
    if "text/markdown" in data:
        return markdown_html(_text(data["text/markdown"]))
    if "text/plain" in data:
        return f"<pre>{html.escape(_text(data['text/plain']))}</pre>"
    return ""


def output_html(output: Mapping[str, Any], drop_mime: Iterable[str] = ()) -> str:
    kind = output.get("output_type")
    if kind == "stream":
        if output.get("name") == "stderr":
            return ""
        return f"<pre>{html.escape(_ANSI.sub('', _text(output.get('text'))))}</pre>"
    if kind == "error":
        line = f"{output.get('ename')}: {output.get('evalue')}"
        return f'<pre class="error">{html.escape(_ANSI.sub("", line))}</pre>'
    if kind not in ("display_data", "execute_result"):
        return ""
    marked = (output.get("metadata") or {}).get("tradeassist") or {}
    data = output.get("data") or {}
    if marked.get("report") is False or any(mime in data for mime in drop_mime):
        return ""
    return _data_html(data)


def outputs_html(
    nb: Mapping[str, Any], *, drop_tags: Iterable[str] = (), drop_mime: Iterable[str] = ()
) -> str:
    """Every output a person should see, in order, each cell in its own ``div``."""
    dropped = {NOTEBOOK_ONLY, *drop_tags}
    drop_mime = tuple(drop_mime)
    parts = []
    for cell in nb.get("cells", []):
        tags = set((cell.get("metadata") or {}).get("tags") or [])
        if tags & dropped:
            continue
        if cell.get("cell_type") == "markdown":
            shown = markdown_html(_text(cell.get("source")))
        elif cell.get("cell_type") == "code":
            shown = "".join(output_html(o, drop_mime) for o in cell.get("outputs") or [])
        else:
            shown = ""
        if shown.strip():
            parts.append(f'<div class="nb-output">{shown}</div>')
    return "".join(parts)
