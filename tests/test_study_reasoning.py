"""Reasoning models on the study's side (study.strategies.reasoning): thinking-aware records,
their summary, table and figure, chat-template switches and the thinking flags.

The record path runs on hand-built rollouts (written to the rollout log the runner resumes
from), so every count below is known: thinking closed within a budget, closed after it, never
closed. The model is the tiny random Llama on SmolLM2's tokenizer with <think> and </think> as
added special tokens (``thinking_model_dir``, conftest); no download.
"""

from __future__ import annotations

import json

import pytest

import phase1_main
import utils
from config import StudyConfig, load_yaml
from study import store
from study.analysis import thinking as thinking_analysis
from study.cli import config_from_args
from study.data.datasets import load_problems
from study.errors import ConfigError
from study.figures.style import save_figure
from study.figures.thinking import fig12_thinking_budget
from study.report import console
from study.report.markdown import phase1_table
from study.strategies import reasoning, rollouts

BUDGETS = (4, 8, 16, 32)


def config_for(model_dir, dataset, results, **changes) -> StudyConfig:
    return StudyConfig().replace({
        "model.name": str(model_dir), "data.dataset": str(dataset), "phase1.budgets": BUDGETS,
        "paths.results_dir": results, "run.quiet": True,
        "statistics.bootstrap_resamples": 50, "statistics.fit_bootstrap_resamples": 10,
        **changes})


def ids_of(tok, text: str) -> list[int]:
    return tok(text, add_special_tokens=False)["input_ids"]


def hand_built(tok) -> list[tuple[list[int], bool, int | None]]:
    """(token ids, eos, thought length or None when thinking never ends) per problem of
    ``sums`` (1+2, 3+4, 5+6): closed early with the right answer, never closed (the right
    number only inside the thought), closed after 16 tokens with a wrong answer."""
    end, eos = tok.get_added_vocab()["</think>"], tok.eos_token_id
    short = ids_of(tok, "One plus two.")
    long = (ids_of(tok, "Three and four make 7, or do they? Let me count again. ") * 4)[:32]
    late = ids_of(tok, "Five and six: count them one at a time, slowly, then write the sum.")
    late = (late * 2)[:17]
    return [(short + [end] + ids_of(tok, " The answer is 3.") + [eos], True, len(short)),
            (long, False, None),
            (late + [end] + ids_of(tok, " The answer is 12.") + [eos], True, len(late))]


def write_log(cfg: StudyConfig, tok, problems, rows) -> None:
    """The rollouts as the runner would have written them: the log it resumes from."""
    plan = rollouts.plan_for(cfg, "phase1")
    config = rollouts.rollout_config(cfg, plan, problems)
    whole = store.rollouts_path(cfg.paths.results_dir, "phase1", rollouts.rollout_tag(cfg))
    log = rollouts.open_log(cfg, whole, "rollouts", config)
    log.start()
    prompts = reasoning.chat_prompts(cfg, tok, [p.prompt for p in problems])
    log.append([{"problem_id": p.problem_id, "sample": 0, "token_ids": ids, "eos": eos,
                 "prompt_len": len(prompt)}
                for p, (ids, eos, _), prompt in zip(problems, rows, prompts)])


@pytest.fixture(scope="module")
def sums(tmp_path_factory, sums_file):
    return sums_file(tmp_path_factory.mktemp("data") / "sums.jsonl", [(1, 2), (3, 4), (5, 6)])


def run_hand_built(cfg: StudyConfig, tok) -> dict:
    problems = load_problems(cfg.data.dataset, None, cfg.seed, cfg.paths.data_dir)
    write_log(cfg, tok, problems, hand_built(tok))
    summary = phase1_main.run(cfg)
    assert summary["provenance"]["rollouts_generated"] == 0  # every rollout came from the log
    return summary


def test_records_of_a_thinking_model(thinking_model_dir, thinking_tokenizer, sums, tmp_path,
                                     capsys):
    tok = thinking_tokenizer
    cfg = config_for(thinking_model_dir, sums, tmp_path / "results")
    summary = run_hand_built(cfg, tok)
    rows = hand_built(tok)
    for budget in BUDGETS:
        records = store.read_records(store.phase1_record_path(cfg.paths.results_dir,
                                                              cfg.model_tag, budget))
        for record, (ids, _eos, thought) in zip(records, rows):
            used = min(budget, len(ids))
            closed = thought is not None and budget >= thought + 1  # the marker within B
            assert record["tokens_used"] == used
            assert record["closed_thinking"] is closed
            assert record["thinking_tokens"] == (thought if closed else used)
            # the answer is read after </think> only: nothing while thinking is open
            assert record["answer_present"] is (record["predicted"] is not None)
            if not closed:
                assert record["predicted"] is None and not record["correct"]
            elif budget >= len(ids):  # the whole answer within the budget
                assert record["answer_present"]
                assert record["correct"] is (record["ground_truth"] == "3")
        row = summary["thinking"]["budgets"][str(budget)]
        assert row == thinking_analysis.budget_row(budget, records)
        assert row["closed_thinking_rate"] == sum(r["closed_thinking"] for r in records) / 3
    never = records[1]  # at 32 tokens "7" is in its thought, which is not an answer
    assert "7" in never["generated"] and never["predicted"] is None and not never["correct"]
    # 4 tokens: nothing closed; 8: the short thought; 32: both closing rollouts
    shares = [summary["thinking"]["budgets"][str(b)]["closed_thinking_rate"] for b in BUDGETS]
    assert shares == [0, 1 / 3, 1 / 3, 2 / 3]
    assert summary["thinking"]["markers"] == ["<think>", "</think>"]
    assert summary["thinking"]["graded"] == "after-end-marker"
    assert summary["thinking"]["card_sampling"] is None  # a folder, not an alias
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("Budget"))
    assert header.split()[-1] == "Closed" and "Closed = share of rollouts" in out
    table = phase1_table(summary)
    assert "| Closed thinking |" in table.splitlines()[0] and "67%" in table


def test_grade_whole_text_reads_thoughts_again(thinking_model_dir, thinking_tokenizer, sums,
                                               tmp_path):
    cfg = config_for(thinking_model_dir, sums, tmp_path / "results",
                     **{"thinking.grade_whole_text": True})
    summary = run_hand_built(cfg, thinking_tokenizer)
    records = store.read_records(store.phase1_record_path(cfg.paths.results_dir,
                                                          cfg.model_tag, 32))
    # the number inside the unclosed thought is now graded (and is right)
    assert [r["correct"] for r in records] == [True, True, False]
    assert records[1]["closed_thinking"] is False and records[1]["answer_present"] is True
    assert summary["thinking"]["graded"] == "whole-text"
    assert summary["provenance"]["rollout_config"]["grade_whole_text"] is True


def test_thinking_figure(thinking_model_dir, thinking_tokenizer, sums, tmp_path):
    cfg = config_for(thinking_model_dir, sums, tmp_path / "results")
    summary = run_hand_built(cfg, thinking_tokenizer)
    paths = save_figure(fig12_thinking_budget(summary), "fig12_thinking_budget_x",
                        tmp_path / "figures")
    assert [p.suffix for p in paths] == [".png", ".pdf"]
    assert all(p.stat().st_size > 10_000 for p in paths)


def test_a_model_without_markers_has_null_fields_and_the_plain_table():
    records = [{"budget": 4, "thinking_tokens": None, "closed_thinking": None,
                "answer_present": None}]
    assert thinking_analysis.budget_rows({4: records}) == {}
    rows = {"4": {"budget": 4, "n": 1, "accuracy": 0.5, "ci_low": 0.1, "ci_high": 0.9,
                  "avg_tokens": 4.0, "hit_budget_rate": 1.0}}
    assert console.accuracy_table(rows) == console.accuracy_table(rows, None)
    assert "Closed" not in console.accuracy_table(rows)
    assert console.thinking_lines({"provenance": {}}) == []


def test_old_record_files_read_back_with_null_thinking(tmp_path):
    old = {"problem_id": "p", "question": "q", "ground_truth": "1", "generated": "1",
           "predicted": "1", "predicted_strict": None, "correct": True, "correct_strict": False,
           "tokens_used": 1, "budget": 4, "hit_budget": False, "sample": 0}
    path = tmp_path / "records.json"
    path.write_text(json.dumps([old]))
    record = store.read_records(path)[0]
    assert (record["thinking_tokens"], record["closed_thinking"], record["answer_present"]) \
        == (None, None, None)


# ---------------------------------------------------------------- generation, template switches

def test_tiny_thinking_model_generates_and_forces_end(thinking_model_dir, sums, tmp_path):
    """Generated (not hand-built) rollouts: every record carries the fields; force-end's cue
    starts with </think>."""
    results = tmp_path / "results"
    base = ["--model", str(thinking_model_dir), "--dataset", str(sums), "--budgets", "4", "8",
            "--results-dir", str(results), "--quiet", "--bootstrap-resamples", "20"]
    assert phase1_main.main(base) == 0
    assert phase1_main.main([*base, "--budget-mode", "force-end", "--answer-tokens", "2"]) == 0
    cfg = config_for(thinking_model_dir, sums, results)
    tok = utils.load_tokenizer(str(thinking_model_dir), cfg.paths.data_dir)
    from study.strategies.forcing import cue_text

    assert cue_text(cfg, tok).startswith("</think>")
    for tag in (cfg.model_tag, f"{cfg.model_tag}-force-end"):
        for budget in (4, 8):
            for r in store.read_records(store.phase1_record_path(results, tag, budget)):
                assert isinstance(r["closed_thinking"], bool)
                assert 0 <= r["thinking_tokens"] <= r["tokens_used"] <= budget
                assert r["answer_present"] is (r["predicted"] is not None)
        summary = store.read_json(store.phase1_combined_path(results, tag))
        assert set(summary["thinking"]["budgets"]) == {"4", "8"}


def test_template_switches_reach_the_prompt(thinking_tokenizer, tmp_path):
    tok = thinking_tokenizer
    plain = StudyConfig()
    off = plain.replace({"model.chat_template_kwargs": {"enable_thinking": False}})
    default, empty = (reasoning.chat_prompts(c, tok, ["What is 1 + 2?"])[0] for c in (plain, off))
    assert tok.decode(default).endswith("assistant\n<think>\n")
    assert tok.decode(empty).endswith("<think>\n\n</think>\n\n")
    # Qwen3's alias switches thinking on; the user's switch wins over it.
    qwen3 = plain.replace({"model.name": "qwen3-8b"})
    assert reasoning.template_kwargs(qwen3) == {"enable_thinking": True}
    user = qwen3.replace({"model.chat_template_kwargs": {"enable_thinking": False, "x": 1}})
    assert reasoning.template_kwargs(user) == {"enable_thinking": False, "x": 1}
    assert reasoning.template_keys(plain) == {}  # fingerprints without switches stay valid
    assert reasoning.template_keys(user) == {"chat_template_kwargs":
                                             {"enable_thinking": False, "x": 1}}


def test_markers_resolve_override_detection_then_alias(smol_tokenizer, thinking_tokenizer):
    plain = StudyConfig()
    think = utils.ThinkingMarkers("<think>", "</think>")
    assert reasoning.markers(plain, smol_tokenizer) is None
    assert reasoning.markers(plain, thinking_tokenizer) == think
    # an alias that declares markers, on a tokenizer without them (a stand-in): the alias's
    assert reasoning.markers(plain.replace({"model.name": "qwq-32b"}), smol_tokenizer) == think
    given = plain.replace({"thinking.markers": ("[[", "]]")})
    assert reasoning.markers(given, thinking_tokenizer) == utils.ThinkingMarkers("[[", "]]")
    none = plain.replace({"thinking.markers": ("none",)})
    assert reasoning.markers(none, thinking_tokenizer) is None


# ---------------------------------------------------------------- flags and YAML

def parse(argv: list[str]) -> StudyConfig:
    return config_from_args(phase1_main.PARSER.parse_args(argv))


def test_chat_template_kwargs_flag_reads_json_scalars():
    cfg = parse(["--chat-template-kwargs", "enable_thinking=false", "n=3", "t=0.5", "name=x",
                 'q="5"', "path=a=b"])
    assert cfg.model.chat_template_kwargs == {"enable_thinking": False, "n": 3, "t": 0.5,
                                              "name": "x", "q": "5", "path": "a=b"}
    assert parse(["--thinking-markers", "<t>", "</t>"]).thinking.markers == ("<t>", "</t>")
    assert parse(["--grade-whole-text"]).thinking.grade_whole_text is True


def test_yaml_takes_a_mapping(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  name: qwen3-4b\n  chat_template_kwargs: {enable_thinking: false}\n"
                    "thinking:\n  markers: ['<think>', '</think>']\n")
    cfg = load_yaml(path)
    assert cfg.model.chat_template_kwargs == {"enable_thinking": False}
    assert cfg.thinking.markers == ("<think>", "</think>")


@pytest.mark.parametrize("argv, named", [
    (["--chat-template-kwargs", "novalue"], "--chat-template-kwargs"),
    (["--thinking-markers", "<think>"], "--thinking-markers"),
    (["--thinking-markers", "x", "x"], "--thinking-markers"),
])
def test_bad_thinking_flags_are_one_line_and_exit_2(argv, named, capsys, tmp_path):
    try:  # argparse's own errors exit; the config's are returned
        code = phase1_main.main([*argv, "--results-dir", str(tmp_path)])
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and named in err
    assert not any(tmp_path.iterdir())


def test_check_rejects_bad_markers_directly():
    with pytest.raises(ConfigError, match="--thinking-markers"):
        reasoning.check(StudyConfig().replace({"thinking.markers": ("a", "b", "c")}))


def test_reasoning_example_config_parses():
    from config import REPO_ROOT
    from study.cli import validate
    from study.data.datasets import REGISTRY

    cfg = load_yaml(REPO_ROOT / "examples" / "reasoning-r1-distill.yaml")
    validate(cfg)
    assert cfg.phase1.budgets == (512, 1024, 2048, 4096, 8192)
    assert set(cfg.grid.datasets) == {"aime24", "aime25", "math500"} <= set(REGISTRY)
    assert {"force-end", "force-continue"} <= set(cfg.grid.budget_modes)
    for name in cfg.figures.models:
        spec = utils.resolve_model(name)
        assert spec.thinking_markers == ("<think>", "</think>")
        # the YAML samples as the card recommends
        assert (cfg.generation.temperature, cfg.generation.top_p) == \
            (spec.sampling.temperature, spec.sampling.top_p)


def test_card_sampling_is_in_the_summary_and_noted_when_not_used():
    cfg = StudyConfig().replace({"model.name": "qwen3-8b",
                                 "thinking.markers": ("<think>", "</think>")})
    records = [{"budget": 8, "thinking_tokens": 8, "closed_thinking": False,
                "answer_present": False}]
    block = reasoning.summary_block(cfg, {8: records})["thinking"]
    assert block["card_sampling"] == {"temperature": 0.6, "top_p": 0.95, "top_k": 20,
                                      "card": "https://huggingface.co/Qwen/Qwen3-8B"}
    assert block["budgets"]["8"]["closed_thinking_rate"] == 0
    greedy = {"thinking": block, "provenance": {"rollout_config": {"temperature": 0.0,
                                                                   "top_p": 1.0}}}
    note = console.thinking_lines(greedy)[-1]
    assert "recommends temperature 0.6, top-p 0.95, top-k 20" in note and "greedily" in note
    as_card = {"thinking": block, "provenance": {"rollout_config": {"temperature": 0.6,
                                                                    "top_p": 0.95}}}
    assert len(console.thinking_lines(as_card)) == 1  # no note when sampled as the card says


def test_phase1b_counts_every_sample(thinking_model_dir, sums, tmp_path, capsys):
    import phase1b_stochastic

    results = tmp_path / "results"
    assert phase1b_stochastic.main(["--model", str(thinking_model_dir), "--dataset", str(sums),
                                    "--budgets", "4", "8", "--samples", "2", "--results-dir",
                                    str(results), "--quiet", "--bootstrap-resamples", "20"]) == 0
    header = next(line for line in capsys.readouterr().out.splitlines()
                  if line.startswith("Budget"))
    assert header.split()[-1] == "Closed"
    summary = store.read_json(next(results.glob("phase1b_summary_*.json")))
    assert [row["n"] for row in summary["thinking"]["budgets"].values()] == [6, 6]  # 3 x 2
