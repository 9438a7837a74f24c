"""run_all.py end to end on the tiny model: the annotation gate, --auto-annotate, every phase."""

from __future__ import annotations

import pytest

import run_all
from config import DEMO_CONFIG, StudyConfig, load_yaml
from study import store
from study.cli import config_from_args


@pytest.fixture()
def study_flags(tiny_model_dir, arith_file, tmp_path) -> tuple[list[str], dict]:
    dirs = {name: tmp_path / name for name in ("results", "annotations", "figures")}
    flags = ["--all", "--model", str(tiny_model_dir), "--dataset", str(arith_file),
             "--budgets", "4", "8", "16", "--stochastic-budgets", "8", "16", "--samples", "2",
             "--cliff-budgets", "4", "8", "12", "--annotate-budgets", "8", "16",
             "--per-budget", "3", "--batch-size", "4", "--quiet"]
    flags += [f"--{name}-dir={path}" for name, path in dirs.items()]
    return flags, dirs


def test_all_stops_at_the_gate_then_auto_annotate_finishes(study_flags, capsys):
    flags, dirs = study_flags
    assert run_all.main(flags) == run_all.GATE_EXIT_CODE == 3
    out = capsys.readouterr().out
    for budget in (8, 16):
        assert f"annotate_errors_budget{budget}.tsv: 3 rows unlabelled" in out
    assert "phase2_annotate.py --model" in out and "--annotations-dir" in out
    tag = next(dirs["results"].glob("phase1_combined_*.json")).stem[len("phase1_combined_"):]
    # Everything that needs no labels ran before the gate; the analysis did not.
    assert store.phase1b_summary_path(dirs["results"], tag).exists()
    assert store.phase3_structure_path(dirs["results"], tag).exists()
    assert not store.phase2_analysis_path(dirs["results"], tag).exists()
    assert (dirs["figures"] / f"fig1_saturation_curve_{tag}.png").exists()
    # The same command with --auto-annotate reuses the finished phases and goes through.
    assert run_all.main([*flags, "--auto-annotate"]) == 0
    out = capsys.readouterr().out
    assert "reusing finished results" in out and "filled 6 rows" in out
    analysis = store.read_json(store.phase2_analysis_path(dirs["results"], tag))
    assert analysis  # written once every row is labelled
    assert (dirs["results"] / f"report_{tag}.md").exists()
    cliff = store.read_json(store.phase3_cliff_summary_path(dirs["results"], tag))
    assert cliff["provenance"]["rollouts_generated"] == 0  # phase 3 came from phase 1


def test_demo_preset_is_overridden_by_explicit_flags():
    args = run_all.build_parser().parse_args(["--demo", "--num-samples", "5", "--samples", "2"])
    cfg = config_from_args(args, load_yaml(DEMO_CONFIG))
    assert cfg.model.name == "smollm2-135m" and cfg.data.dataset == "arith"
    assert cfg.data.num_samples == 5 and cfg.phase1b.samples == 2
    assert cfg.annotation.auto_annotate is True
    assert cfg.phase1b.budgets == (128, 256)  # untouched preset values stay


def test_steps_run_in_process_in_order_with_the_gate_before_the_analysis(monkeypatch):
    ran = []
    monkeypatch.setattr(run_all, "annotation_gate", lambda cfg, command: 3)
    code = run_all.run_steps(StudyConfig(), list(run_all.PHASES), gated=True,
                             run=lambda name, cfg: ran.append(name))
    assert code == 3
    assert ran == ["phase1_main", "phase1b_stochastic", "phase2_prepare", "phase3_cliff",
                   "phase3_structure", "visualize"]  # figures of what exists, then the wait


def test_bad_yaml_key_is_one_line_exit_2(tmp_path, capsys):
    bad = tmp_path / "study.yaml"
    bad.write_text("model:\n  nme: qwen-7b\n")
    assert run_all.main(["--all", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "model.nme" in err and str(bad) in err


def test_nothing_to_run_prints_help_and_exits_2(capsys):
    assert run_all.main([]) == 2
    assert "--all" in capsys.readouterr().out


def test_steps_beyond_the_spec_run_only_when_asked_and_in_order(monkeypatch):
    asked = []
    monkeypatch.setattr(run_all, "run_steps",
                        lambda cfg, steps, gated, timings=None: asked.append((steps, gated)) or 0)
    assert run_all.main(["--visualize", "--phase4", "--lens", "--phase1", "--depth"]) == 0
    assert run_all.main(["--all"]) == 0
    assert run_all.main(["--all", "--lens"]) == 0
    assert asked == [
        (["phase1", "depth", "lens", "phase4", "visualize"], False),
        (list(run_all.PHASES), True),
        (["phase1", "phase1b", "phase2_prepare", "phase3", "lens", "phase2_analyze",
          "visualize"], True)]
    # every step names scripts that exist and have run(cfg)
    import importlib

    for step in run_all.ORDER:
        for name in run_all.SCRIPTS[step]:
            assert callable(importlib.import_module(name).run)


def test_timing_rows_count_only_what_the_script_made():
    import time as _time

    from study.run.timings import step_timing, timings_table

    now = _time.time()
    stamp = _time.strftime("%Y-%m-%dT%H:%M:%S%z", _time.localtime(now + 1))
    made = {"provenance": {"written_at": stamp, "model_load_s": 2.0, "generation_s": 10.0,
                           "forcing_s": 3.0, "generated_tokens": 500, "forced_answer_tokens": 20}}
    row = step_timing("phase1_main", 20.0, now, made)
    assert (row.model_load_s, row.model_s, row.generated_tokens) == (2.0, 13.0, 520)
    assert row.analysis_s == 5.0 and row.tokens_per_s == 40.0 and not row.reused
    old = {"provenance": {**made["provenance"],
                          "written_at": _time.strftime("%Y-%m-%dT%H:%M:%S%z",
                                                       _time.localtime(now - 3600))}}
    reused = step_timing("phase1_main", 0.5, now, old)
    assert reused.reused and reused.generated_tokens == 0 and reused.analysis_s == 0.5
    plain = step_timing("visualize", 4.0, now, None)  # a script that returns no summary
    assert plain.model_s == 0.0 and plain.analysis_s == 4.0
    table = timings_table([row, reused, plain])
    assert "reused" in table and table.splitlines()[-1].split()[:2] == ["total", "24.5"]


def test_a_run_writes_its_timings_with_the_machine(monkeypatch, tmp_path, capsys):
    from study.run.timings import StepTiming

    def fake_steps(cfg, steps, gated, timings):
        timings.append(StepTiming("phase1_main", 3.0, 1.0, 1.5, 30, 0.5, False))
        return 0

    monkeypatch.setattr(run_all, "run_steps", fake_steps)
    assert run_all.main(["--phase1", "--results-dir", str(tmp_path)]) == 0
    saved = store.read_json(store.timings_path(tmp_path))
    assert saved["steps"][0]["script"] == "phase1_main" and saved["steps"][0]["tokens_per_s"] == 20
    assert saved["provenance"]["machine"]["cores"] >= 1
    assert "where the time went" in capsys.readouterr().out
