"""The study as one self-contained HTML page: ``results/report_{model}.html``.

Opens from a file:// URL with nothing fetched: the markdown report (``study.report.markdown``,
converted here, so the page and the .md never disagree), every drawn figure as a PNG data URI,
the styles and a small vanilla script (``assets/report.css``, ``assets/report.js``) inline, and
the problem browser's data (``study.report.html_data``) as JSON in a
``<script type="application/json">``. Model output is data, never markup: the JSON escapes
``<``, ``>`` and ``&`` (a rollout holding ``</script>`` cannot close the tag) and the script
writes every string with ``textContent``. Reads only the results store and the figure files.
"""

from __future__ import annotations

import base64
import html
import io
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from study import store
from study.report import html_data
from study.report.markdown import FigureFiles, build_report
from study.results import StudyResults

ASSETS = Path(__file__).parent / "assets"
# Figures are saved at 300 DPI for print; the page shows them at half that, quantised to a
# palette (flat plot colours survive it), which keeps a demo page well under 2 MB.
SCREEN_SCALE = 2
PALETTE = 128


# ---------------------------------------------------------------- figures

def figure_uri(png: Path) -> str:
    """A PNG file as a ``data:`` URI, downscaled for the screen."""
    from PIL import Image  # matplotlib's own dependency; imported here, only when drawing

    with Image.open(png) as image:
        small = image.convert("RGB").resize(
            (max(1, image.width // SCREEN_SCALE), max(1, image.height // SCREEN_SCALE)),
            Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    small.quantize(colors=PALETTE, method=Image.Quantize.FASTOCTREE).save(buffer, "PNG",
                                                                         optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def figure_uris(figures: Sequence[FigureFiles]) -> dict[str, str]:
    """stem -> data URI of every figure that has a PNG (``--format pdf`` alone draws none)."""
    return {fig.stem: figure_uri(png) for fig in figures
            for png in [next((p for p in fig.paths if p.suffix == ".png"), None)] if png}


def gallery(figures: Sequence[FigureFiles], uris: dict[str, str], skipped: list[str]) -> str:
    out = ['<div class="gallery">']
    for fig in figures:
        title = html.escape(f"{fig.title.capitalize()} — {fig.stem}")
        body = (f'<img alt="{html.escape(fig.title)}" src="{uris[fig.stem]}">' if fig.stem in uris
                else "<p class=note>no PNG drawn (see --format)</p>")
        out.append(f'<figure id="{html.escape(fig.stem)}">{body}<figcaption>{title}'
                   "</figcaption></figure>")
    out.append("</div>")
    out += [f"<p class=note>skipped {html.escape(line)}</p>" for line in skipped]
    return "\n".join(out)


# ---------------------------------------------------------------- markdown (the report's subset)

_INLINE = [(re.compile(r"\*\*(.+?)\*\*"), r"<strong>\1</strong>"),
           (re.compile(r"\\\*"), "*")]
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
_CODE = re.compile(r"`([^`]+)`")


def inline(text: str) -> str:
    """Escape, then the inline marks the report uses: `code`, [links](x), **bold**."""
    parts = _CODE.split(text)  # odd items are code spans: kept verbatim
    out = []
    for i, part in enumerate(parts):
        if i % 2:
            out.append(f"<code>{html.escape(part)}</code>")
            continue
        part = _LINK.sub(lambda m: f'<a href="{m.group(2).replace(chr(34), "%22")}">'
                         f"{m.group(1)}</a>",
                         html.escape(part, quote=False))
        for pattern, repl in _INLINE:
            part = pattern.sub(repl, part)
        out.append(part)
    return "".join(out)


def _table(lines: list[str]) -> str:
    def cells(line: str) -> list[str]:
        return [c.strip() for c in line.strip().strip("|").split("|")]

    right = [c.endswith(":") for c in cells(lines[1])]
    head = "".join(f"<th>{inline(c)}</th>" for c in cells(lines[0]))
    rows = "".join("<tr>" + "".join(
        f'<td{" class=num" if r else ""}>{inline(c)}</td>' for c, r in zip(cells(line), right))
        + "</tr>" for line in lines[2:])
    return f"<div class=scroll><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody>" \
           "</table></div>"


def markdown_html(text: str, images: dict[str, str]) -> str:
    """HTML of the markdown report: headings, paragraphs, bullets, tables, images (the ones
    in ``images``, a file name -> data URI map; nothing is linked to be fetched)."""
    out: list[str] = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = block.splitlines()
        first = lines[0]
        if first.startswith("## "):
            title = first[3:].strip()
            out.append(f'<h2 id="{slug(title)}">{inline(title)}</h2>')
            lines = lines[1:]
        elif first.startswith("# "):
            out.append(f"<h1>{inline(first[2:])}</h1>")
            lines = lines[1:]
        if not lines:
            continue
        if all(line.startswith("- ") for line in lines):
            out.append("<ul>" + "".join(f"<li>{inline(x[2:])}</li>" for x in lines) + "</ul>")
        elif lines[0].startswith("|") and len(lines) > 1:
            out.append(_table(lines))
        elif (image := re.fullmatch(r"!\[([^\]]*)\]\(([^)]+)\)", lines[0])) is not None:
            uri = images.get(Path(image.group(2)).name)
            out.append(f'<img class=inline alt="{html.escape(image.group(1))}" src="{uri}">'
                       if uri else f"<p class=note>{html.escape(image.group(1))}</p>")
        elif block.startswith("_") and block.rstrip(".").endswith("_"):
            out.append(f"<p><em>{inline(' '.join(lines).strip('_.'))}</em></p>")
        else:
            out.append(f"<p>{inline(' '.join(lines))}</p>")
    return "\n".join(out)


def slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def split_sections(md: str) -> tuple[str, dict[str, str]]:
    """(the head before the first ``## ``, {section title: its markdown with the heading})."""
    head, *rest = re.split(r"(?m)^(?=## )", md)
    return head, {part.splitlines()[0][3:].strip(): part for part in rest}


# ---------------------------------------------------------------- the page

def data_json(data: Any) -> str:
    """JSON that is safe inside ``<script type="application/json">``: no ``<``, ``>`` or
    ``&`` survives (each becomes a \\u escape, which JSON.parse reads back)."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def asset(name: str) -> str:
    text = (ASSETS / name).read_text(encoding="utf-8")
    if "</script" in text.lower() or "</style" in text.lower():
        raise ValueError(f"{name} must not close its own inline tag")
    return text


def build_page(results: StudyResults, figures: Sequence[FigureFiles], skipped: list[str],
               report_dir: Path, annotations_dir: Path | None) -> str:
    """The page's HTML text."""
    uris = figure_uris(figures)
    images = {f"{fig.stem}.png": uris[fig.stem] for fig in figures if fig.stem in uris}
    head, sections = split_sections(build_report(results, figures, skipped, report_dir))
    findings = sections.pop("Findings", "")
    sections.pop("Figures", None)  # replaced by the gallery of embedded figures
    data = html_data.page_data(results, annotations_dir)
    nav = [("findings", "Findings"), ("problems", f"Problems ({len(data['problems'])})"),
           ("figures", "Figures"), *((slug(t), t) for t in sections)]
    title = f"Token-budget study — {data['model']}"
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # Nothing may be fetched: the policy blocks any request the page could make.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'\">",
        f"<title>{html.escape(title)}</title>", f"<style>{asset('report.css')}</style>",
        "</head><body>",
        "<nav>" + "".join(f'<a href="#{key}">{html.escape(label)}</a>'
                          for key, label in nav) + "</nav>",
        "<main>", markdown_html(head, images),
        '<section id="findings">' + markdown_html(findings, images) + "</section>",
        '<section id="problems"><h2>Problems</h2><div id="browser"></div></section>',
        '<section id="figures"><h2>Figures</h2>' + gallery(figures, uris, skipped) + "</section>",
        *(f"<section>{markdown_html(text, images)}</section>" for text in sections.values()),
        "</main>",
        f'<script type="application/json" id="study-data">{data_json(data)}</script>',
        f"<script>{asset('report.js')}</script>", "</body></html>", ""])


def html_path(results_dir: Path, tag: str) -> Path:
    return Path(results_dir) / f"report_{tag}.html"


def write_html(results: StudyResults, figures: Sequence[FigureFiles], skipped: list[str],
               annotations_dir: Path | None = None) -> Path:
    """Write ``results/report_{model}.html`` and return its path; ``annotations_dir`` holds
    the models' annotation folders (``annotations/{model}/``)."""
    path = html_path(results.results_dir, results.tag)
    store.atomic_write_text(path, build_page(results, figures, skipped, path.parent,
                                             annotations_dir))
    return path
