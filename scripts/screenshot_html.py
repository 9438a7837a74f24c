"""Screenshots of a study's HTML report in headless Chromium (the system browser, via Playwright).

    python scripts/screenshot_html.py results/report_smollm2-135m.html docs/report_html.png
    python scripts/screenshot_html.py REPORT.html OUT.png --problem arith-s1234-00007

Opens the page from its file:// URL, goes to the problem browser, clicks a problem (the first
row: the most emergent problem, or --problem ID) and saves what a laptop screen shows then
(1440 x 900 CSS pixels). Prints how long the page took to draw its first rows. The tests use
``open_report`` and ``screenshot`` too.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

VIEWPORT = {"width": 1440, "height": 900}


def chromium() -> str | None:
    """The system Chromium (Debian's ``chromium`` package; scripts/setup.sh installs it)."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def launch(playwright: Any) -> Any:
    # --no-sandbox: CI and the dev machines run as root, where Chromium's sandbox refuses to start.
    return playwright.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])


def open_report(browser: Any, path: Path) -> Any:
    """A new page showing the report; waits until its script has drawn the first rows."""
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(Path(path).resolve().as_uri())
    page.wait_for_selector("html[data-ready]")
    return page


def screenshot(page: Any, out: Path, problem: str | None = None) -> str:
    """Click ``problem`` (default: the first row) in the browser, save a screenshot of the
    viewport to ``out``; returns the id clicked."""
    page.click("a[href='#problems']")
    row = page.locator(f"tr.problem[data-id='{problem}']" if problem else "tr.problem").first
    pid = row.get_attribute("data-id")
    row.click()
    page.wait_for_selector("#detail .rollout")
    page.evaluate("document.getElementById('problems').scrollIntoView()")
    page.screenshot(path=str(out))
    return pid


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", type=Path, help="results/report_{model}.html")
    parser.add_argument("out", type=Path, help="PNG to write")
    parser.add_argument("--problem", help="problem id to open (default: the first row)")
    args = parser.parse_args(argv)
    if chromium() is None:
        print("screenshot_html.py: no chromium; bash scripts/setup.sh installs it",
              file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = open_report(browser, args.report)
        ready = page.get_attribute("html", "data-ready")
        pid = screenshot(page, args.out, args.problem)
        browser.close()
    from PIL import Image

    with Image.open(args.out) as image:  # a palette PNG: a third of the size, for docs/
        small = image.convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT)
    small.save(args.out, optimize=True)
    print(f"wrote {args.out} (problem {pid}; first rows drawn {ready} ms after navigation)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
