"""results/report_{model}.html: built from a synthetic results folder (real SmolLM2 token ids,
records as the truncation strategy writes them, labelled TSVs) and checked in headless Chromium.

Expected values are computed here from the record files, not read from the page's data: the
filters' counts, the emergence order, each budget's verdict and extracted answer, and where each
budget mark must sit (the text of the rollout's first B token ids, decoded).
"""

from __future__ import annotations

import importlib.util
import json
import re
import time
from pathlib import Path

import pytest
from report_html_fixtures import HOSTILE, MODEL, Codec, smol_codec, synthetic_study

import visualize
from study import store
from study.analysis import emergence
from study.report import html_data, html_page

REPO = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("screenshot_html",
                                               REPO / "scripts" / "screenshot_html.py")
shots = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(shots)

BUDGETS = [16, 32, 64, 128]
N = 120  # more than one page of rows (100)
HOSTILE_ID = "gsm8k-0003"


@pytest.fixture(scope="module")
def study(tmp_path_factory, request):
    codec = smol_codec()
    if codec is None:  # the model is not converted yet: the same tokenizer, read from the GGUF
        tok = request.getfixturevalue("smol_tokenizer")
        codec = Codec(lambda text: tok(text, add_special_tokens=False)["input_ids"],
                      lambda ids: tok.decode(list(ids), skip_special_tokens=True))
    root = tmp_path_factory.mktemp("html")
    made = synthetic_study(root, N, BUDGETS, codec, p1b_budgets=[64, 128], k=3, p1b_problems=20)
    assert visualize.main(["--model", MODEL, "--results-dir", str(made.results),
                           "--annotations-dir", str(made.annotations),
                           "--figures-dir", str(root / "figures"), "--format", "png"]) == 0
    made.page = html_page.html_path(made.results, MODEL)
    return made


@pytest.fixture(scope="module")
def browser():
    if shots.chromium() is None:
        pytest.skip("no chromium browser: scripts/setup.sh installs Debian's chromium with "
                    "apt-get (needs root); without it the browser tests cannot run")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        handle = shots.launch(playwright)
        yield handle
        handle.close()


class Watched:
    """A page with every console error, page error and request it made."""

    def __init__(self, browser, path: Path):
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page = browser.new_page(viewport=shots.VIEWPORT)
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.url = Path(path).resolve().as_uri()
        self.page.goto(self.url)
        self.page.wait_for_selector("html[data-ready]")

    def count(self) -> int:
        return int(self.page.get_attribute("#count", "data-n"))

    def rows(self) -> list[str]:
        return self.page.eval_on_selector_all("tr.problem", "rows => rows.map(r => r.dataset.id)")

    def open(self, pid: str) -> None:
        self.page.fill("#search", pid)
        self.page.click(f"tr.problem[data-id='{pid}']")
        self.page.wait_for_selector("#detail .rollout")

    def marks(self, box: str = "#detail > .rollout") -> dict:
        """Budget -> the rollout text in front of its mark, and the whole text."""
        return self.page.eval_on_selector(box, """box => {
            let text = ""; const marks = {};
            for (const node of box.children) {
              if (node.classList.contains("band")) { text += node.textContent; continue; }
              for (const m of node.querySelectorAll(".mark")) marks[m.dataset.budget] = text;
            }
            return {marks: marks, full: text};
        }""")


@pytest.fixture()
def page(browser, study):
    watched = Watched(browser, study.page)
    yield watched
    watched.page.close()


def trajectories(study) -> dict[str, list[bool]]:
    out: dict[str, list[bool]] = {}
    for budget in BUDGETS:
        for r in store.read_records(store.phase1_record_path(study.results, MODEL, budget)):
            out.setdefault(r["problem_id"], []).append(bool(r["correct"]))
    return out


def expected_counts(study) -> dict[str, int]:
    traj = trajectories(study)
    return {
        "all": len(traj),
        "jump": sum(emergence.jumps([float(v) for v in t]) for t in traj.values()),
        "wrong": sum(not any(t) for t in traj.values()),
        "right": sum(all(t) for t in traj.values()),
        "regress": sum(any(t[i] and not t[j] for i in range(len(t))
                           for j in range(i + 1, len(t))) for t in traj.values()),
    }


# ---------------------------------------------------------------- the file


def test_visualize_writes_one_self_contained_file(study):
    text = study.page.read_text(encoding="utf-8")
    assert study.page.stat().st_size < 2_000_000
    # Nothing to fetch: no external reference of any kind, figures as data URIs.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", text)
    assert "<link" not in text and "@import" not in text and "url(" not in text
    images = re.findall(r'<img [^>]*src="([^"]*)"', text)
    assert len(images) >= 2 and all(src.startswith("data:image/png;base64,") for src in images)
    # The one data block: model output cannot end it, and it reads back to the records.
    blob = re.search(r'<script type="application/json" id="study-data">(.*?)</script>', text,
                     re.DOTALL).group(1)
    assert "<" not in blob and ">" not in blob and "&" not in blob
    data = json.loads(blob)
    assert [p["id"] for p in data["problems"]] == list(trajectories(study))
    assert text.count("</script>") == 2  # the data block and the script, nothing else
    for heading in ("Phase 1 — saturation curve", "Phase 1b — stochastic verification",
                    "Provenance and cost"):
        assert heading in text


def test_segments_cut_the_rollout_at_each_budgets_text():
    texts = ["ab", "abcd", "abcd", "abcdef"]
    segs, marks = html_data.segments(texts, answer=(3, 5))
    assert marks == [2, 4, 4, 6]
    assert segs == [["ab", 0], ["c", 1], ["d", 1, 1], ["e", 3, 1], ["f", 3]]
    # A prefix decoded mid-character ends in U+FFFD: the mark goes before that character.
    assert html_data.segments(["a\ufffd", "a\U0001f642b"])[1] == [1, 3]
    assert html_data.answer_span("12 123 1.25 x12 12.", "12") == (0, 2)
    assert html_data.answer_span("t = 123, 12.5 or 12.", "12") == (17, 19)
    assert html_data.answer_span("no answer", "12") is None


def test_filters_and_json_escaping():
    assert html_data.flags([0, 1, 1], True) == ["jump"]
    assert html_data.flags([1, 0, 1], False) == ["regress"]
    assert html_data.flags([0, 0], False) == ["wrong"]
    assert html_data.flags([1, 1], False) == ["right"]
    value = {"t": HOSTILE + " \u2028 🙂"}
    assert json.loads(html_page.data_json(value)) == value
    assert not set("<>&") & set(html_page.data_json(value))


def test_markdown_subset_is_escaped_and_converted():
    md = ("# T <x>\n\n## A section\n\n- `a<b>` and **bold** [link](f.png)\n\n"
          "| h | n |\n| --- | ---: |\n| <i>x</i> | 3 |\n\n_no results — run x.py._")
    out = html_page.markdown_html(md, {})
    assert "<h1>T &lt;x&gt;</h1>" in out and '<h2 id="a-section">' in out
    assert "<code>a&lt;b&gt;</code>" in out and "<strong>bold</strong>" in out
    assert '<a href="f.png">link</a>' in out
    assert "<td>&lt;i&gt;x&lt;/i&gt;</td><td class=num>3</td>" in out
    assert "<em>no results — run x.py</em>" in out


def test_forced_records_show_the_rollout_and_the_forced_answer(study, tmp_path):
    """A force-end run's text is rollout + cue + answer; the marks cover the rollout only."""
    cue = "\nThe final answer is"
    rows = []
    for budget in BUDGETS:
        r = dict(study.records[budget][0])
        r.update(generated=r["generated"] + cue + " 42", forced_answer=" 42",
                 p_gold=0.25 * BUDGETS.index(budget), budget_mode="force-end")
        rows.append(r)
    out = html_data.rollout(rows, cue)
    marks = [len(html_data.thinking_text(r, cue)) for r in rows]
    assert "".join(s[0] for s in out["roll"]) == study.records[BUDGETS[-1]][0]["generated"]
    assert marks == [len(study.records[b][0]["generated"]) for b in BUDGETS]
    assert out["forced"] == [" 42"] * 4 and out["pgold"] == [0.0, 0.25, 0.5, 0.75]


# ---------------------------------------------------------------- in the browser


def test_page_loads_quietly_and_fetches_nothing(page):
    assert page.errors == []
    assert page.requests == [page.url]  # the file itself; figures and data are inline
    assert page.page.evaluate("window.__pwned") is None


def test_one_row_per_problem_over_pages(page, study):
    assert page.count() == N == len(study.records[BUDGETS[0]])
    first = page.rows()
    page.page.click("#pager button:has-text('next')")
    second = page.rows()
    assert (len(first), len(second)) == (100, N - 100)
    assert sorted(first + second) == sorted(trajectories(study))


def test_rows_are_sorted_by_emergence_score(page, study):
    traj = trajectories(study)
    order = {pid: i for i, pid in enumerate(traj)}
    score = {pid: emergence.breakthroughness([float(v) for v in t]) for pid, t in traj.items()}
    expected = sorted(traj, key=lambda pid: (-round(score[pid], 4), order[pid]))
    assert page.rows() == expected[:100]
    page.page.select_option("#sort", "order")
    assert page.rows() == list(traj)[:100]


def test_each_filter_counts_what_the_records_say(page, study):
    counts = expected_counts(study)
    assert all(counts[k] for k in counts)  # the folder has problems of every kind
    for key, n in counts.items():
        page.page.click(f"button[data-filter='{key}']")
        assert page.count() == n, key
        assert len(page.rows()) == min(n, 100)
    page.page.click("button[data-filter='all']")
    for kind in {label[2] for label in study.labels}:
        page.page.select_option("#error-type", kind)
        assert page.count() == len({pid for pid, _, t, _ in study.labels if t == kind}), kind


def test_a_click_shows_the_rollout_marks_at_token_offsets_and_the_verdicts(page, study):
    records = {b: {r["problem_id"]: r for r in study.records[b]} for b in BUDGETS}
    long = [pid for pid, ids in study.tokens.items() if len(ids) > BUDGETS[-1]]
    short = [pid for pid, ids in study.tokens.items() if len(ids) < BUDGETS[-2]]
    for pid in (long[0], short[0]):
        page.open(pid)
        seen = page.marks()
        ids = study.tokens[pid]
        assert seen["full"] == study.decode(ids[:BUDGETS[-1]])
        for budget in BUDGETS:  # the text in front of mark B is the first B tokens, decoded
            assert seen["marks"][str(budget)] == study.decode(ids[:budget]), (pid, budget)
        cells = page.page.eval_on_selector_all(
            "#detail table.budgets tbody tr",
            "rows => rows.map(r => [r.dataset.budget, r.querySelector('.pred').textContent,"
            " r.querySelector('.verdict').textContent])")
        assert cells == [[str(b), records[b][pid]["predicted"] or "—",
                          "right" if records[b][pid]["correct"] else "wrong"] for b in BUDGETS]
    eos = page.page.text_content("#detail > .rollout .eos")
    assert eos == f"EOS at {len(study.tokens[short[0]])}"


def test_annotations_and_phase1b_samples_are_shown(page, study):
    pid, budget, kind, note = next(lb for lb in study.labels if lb[0] in
                                   {p for p, _ in study.p1b_tokens})
    page.open(pid)
    shown = page.page.text_content("#detail .annotations")
    assert f"{budget} tokens: {kind}" in shown and note in shown  # the note's <i> is text
    assert page.page.locator("#detail .annotations i").count() == 0
    samples = page.page.locator("#detail .sample")
    assert samples.count() == 3
    for s in range(3):
        seen = page.marks(f"#detail .sample[data-sample='{s}'] .rollout")
        for budget in study.p1b_budgets:
            assert seen["marks"][str(budget)] == study.decode(
                study.p1b_tokens[(pid, s)][:budget])


def test_model_output_is_shown_as_text(page, study):
    page.open(HOSTILE_ID)
    assert HOSTILE in page.marks()["full"]
    assert page.page.locator("#detail script, #detail b").count() == 0
    assert page.page.evaluate("window.__pwned") is None
    assert page.errors == []


def test_screenshot_of_an_opened_problem(page, tmp_path_factory):
    from PIL import Image

    out = tmp_path_factory.mktemp("screens") / "report_html.png"
    pid = shots.screenshot(page.page, out)
    assert pid == page.rows()[0]
    with Image.open(out) as image:
        assert image.size == (1440, 900)
        assert len(image.convert("RGB").getcolors(1 << 20) or []) > 50  # not a blank page


@pytest.mark.slow
def test_a_gsm8k_sized_study_stays_small_and_opens_fast(tmp_path, browser):
    """1,319 problems x 7 budgets and phase 1b (5 samples at 512 and 1024 tokens) with rollouts
    of GSM8K-like lengths (median ~300 tokens, 1 in 12 running past the largest budget)."""
    budgets = [32, 64, 128, 256, 512, 1024, 2048]

    def length(rng) -> int:
        return 2049 if rng.random() < 1 / 12 else int(rng.lognormvariate(5.7, 0.4))

    made = synthetic_study(tmp_path, 1319, budgets, None, p1b_budgets=[512, 1024], k=5,
                           length=length)
    started = time.perf_counter()
    out = visualize.run(_config(made, tmp_path))
    built = time.perf_counter() - started
    size = out["html"].stat().st_size
    started = time.perf_counter()
    watched = Watched(browser, out["html"])
    opened = time.perf_counter() - started
    assert watched.count() == 1319 and watched.errors == []
    watched.open(watched.rows()[0])
    clicked = time.perf_counter() - started - opened
    print(f"\nGSM8K-sized page: {size / 1e6:.1f} MB, built in {built:.1f} s, first rows drawn "
          f"{watched.page.get_attribute('html', 'data-ready')} ms after navigation, loaded in "
          f"{opened:.2f} s, a problem opened in {clicked:.2f} s")
    assert size < 25_000_000
    assert opened < 10 and clicked < 2  # "a few seconds" on a busy 2-core machine


def _config(made, root):
    from config import StudyConfig

    return StudyConfig().replace({"model.name": MODEL, "paths.results_dir": made.results,
                                  "paths.annotations_dir": made.annotations,
                                  "paths.figures_dir": root / "figures",
                                  "figures.formats": ("png",)})


def test_a_problem_missing_from_a_record_file_is_left_out_and_named(study, tmp_path):
    import shutil

    from study.results import load_results

    results = tmp_path / "results"
    shutil.copytree(study.results, results)
    path = store.phase1_record_path(results, MODEL, BUDGETS[-1])
    records = store.read_records(path)
    store.write_json(path, [r for r in records if r["problem_id"] != "gsm8k-0007"])
    data = html_data.page_data(load_results(results, MODEL, MODEL), study.annotations)
    assert len(data["problems"]) == N - 1
    assert data["notes"] == ["gsm8k-0007: not in every budget's record file; left out"]
