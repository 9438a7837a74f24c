"""phase_depth and phase_lens end to end on the tiny 2-layer model: files, tags, reuse, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

import phase1_main
import phase_depth
import phase_lens
import utils
from config import StudyConfig
from study import store
from study.errors import ConfigError
from study.run import depth_sweep


def base_args(model_dir, dataset, results):
    return ["--model", str(model_dir), "--dataset", str(dataset), "--results-dir", str(results),
            "--quiet", "--batch-size", "3"]


def test_model_tag_and_fingerprint_carry_the_depth(tiny_model_dir):
    cfg = StudyConfig().replace({"model.name": "smollm2-135m"})
    assert cfg.model_tag == "smollm2-135m"
    assert cfg.replace({"model.num_layers": 12}).model_tag == "smollm2-135m-L12"
    assert depth_sweep.resolve_layers(StudyConfig(), 30) == (12, 18, 24, 27, 30)
    with pytest.raises(ConfigError, match="--layers 31"):
        depth_sweep.resolve_layers(StudyConfig().replace({"depth.layers": [12, 31]}), 30)


def test_num_layers_flag_errors_exit_2(tiny_model_dir, arith_file, tmp_path, capsys):
    args = base_args(tiny_model_dir, arith_file, tmp_path / "r") + ["--budgets", "4"]
    assert phase1_main.main([*args, "--num-layers", "3"]) == 2
    assert "--num-layers 3" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        phase1_main.main([*args, "--num-layers", "0"])
    assert stop.value.code == 2


def test_depth_sweep_writes_tagged_files_and_reuses_phase1(tiny_model_dir, arith_file,
                                                           tmp_path, capsys):
    results = tmp_path / "results"
    args = base_args(tiny_model_dir, arith_file, results)
    # Phase 1 of the 1-layer model first: the sweep must take its rollouts, not the full model's.
    assert phase1_main.main([*args, "--budgets", "4", "12", "--num-layers", "1"]) == 0
    p1 = store.read_json(next(results.glob("phase1_combined_*-L1.json")))
    assert p1["provenance"]["num_layers"] == 1 and p1["provenance"]["model_layers"] == 2
    assert p1["provenance"]["rollout_config"]["num_layers"] == 1
    assert phase_depth.main([*args, "--layers", "1", "2", "--budgets", "4", "8"]) == 0
    out = capsys.readouterr().out
    assert "critical depth" in out and "Layers" in out
    tag = utils.model_tag(str(tiny_model_dir))
    summary = store.read_json(store.depth_summary_path(results, tag))
    assert summary["model_layers"] == 2 and summary["layers"] == [1, 2]
    assert set(summary["budgets"]) == {"4", "8"}
    runs = summary["runs"]
    assert runs["1"]["reused_rollouts_from"] and runs["1"]["generated_tokens"] == 0
    assert runs["2"]["reused_rollouts_from"] is None and runs["2"]["generated_tokens"] == 6 * 8
    # Records of the cut model at budget 4 are phase 1's records of the same cut model.
    cut = store.read_json(store.depth_record_path(results, f"{tag}-L1", 4))
    assert cut == store.read_json(store.phase1_record_path(results, f"{tag}-L1", 4))
    full = store.read_json(store.depth_record_path(results, tag, 4))
    assert [r["generated"] for r in cut] != [r["generated"] for r in full]
    block = summary["budgets"]["8"]
    points = {int(k): r["accuracy"] for k, r in block["depths"].items()}
    assert block["critical_depth"] in points
    # A second run reuses every depth.
    assert phase_depth.main([*args, "--layers", "1", "2", "--budgets", "4", "8"]) == 0
    again = store.read_json(store.depth_summary_path(results, tag))
    assert all(r["reused"] for r in again["runs"].values())


def test_lens_phase_on_phase1_rollouts(tiny_model_dir, arith_file, tmp_path, capsys):
    results = tmp_path / "results"
    args = base_args(tiny_model_dir, arith_file, results)
    assert phase_lens.main([*args, "--budgets", "4"]) == 2  # no phase-1 rollouts yet
    assert "phase1_main.py" in capsys.readouterr().err
    assert phase1_main.main([*args, "--budgets", "4", "12"]) == 0
    assert phase_lens.main([*args, "--samples", "4", "--budgets", "4", "12"]) == 0
    tag = utils.model_tag(str(tiny_model_dir))
    summary = store.read_json(store.lens_summary_path(results, tag))
    assert summary["n_rollouts"] == 4 and len(set(summary["problem_ids"])) == 4
    for b in ("4", "12"):
        row = summary["budgets"][b]
        assert len(row["kl"]) == 2 and row["kl"][-1] == pytest.approx(0, abs=1e-6)
        assert row["kl"][0] > 0 and row["n_tokens"] == 4 * int(b)
    assert "KL" in capsys.readouterr().out
    # Same seed, same sample; the numbers are the engine's on those rollouts.
    log = results / "rollouts" / f"phase1_{tag}.jsonl"
    rows = {r["problem_id"]: r for r in map(json.loads, log.read_text().splitlines()[1:])}
    assert set(summary["problem_ids"]) <= set(rows)
    assert np.all(np.isfinite(summary["budgets"]["12"]["kl"]))


def test_forced_answers_of_a_cut_model_come_from_the_cut_model(tiny_model_dir, arith_file,
                                                               tmp_path, tiny_lm):
    """Force-end under --num-layers: rollouts and answer branches both use the first L layers.

    The reference is a plain ``model.generate`` of prompt + thinking + cue on the 1-layer model;
    the whole model's answers must differ somewhere, or the check could not tell them apart.
    """
    import torch

    results = tmp_path / "r"
    args = [*base_args(tiny_model_dir, arith_file, results), "--budgets", "8",
            "--num-layers", "1", "--budget-mode", "force-end", "--answer-tokens", "4",
            "--bootstrap-resamples", "20"]
    assert phase1_main.main(args) == 0
    tag = utils.model_tag(str(tiny_model_dir))
    records = store.read_json(store.phase1_record_path(results, f"{tag}-L1-force-end", 8))
    log = (results / "rollouts" / f"phase1_{tag}-L1.jsonl").read_text().splitlines()[1:]
    rows = {json.loads(x)["problem_id"]: json.loads(x) for x in log}
    cut = utils.load_model(str(tiny_model_dir), "fp32", tmp_path, "cpu", 1)
    full = utils.load_model(str(tiny_model_dir), "fp32", tmp_path, "cpu")
    cue = cut.tokenizer("\n\nFinal answer:", add_special_tokens=False)["input_ids"]
    from study.data.datasets import load_dataset

    questions = {p.problem_id: p.prompt for p in load_dataset(
        str(arith_file), None, 1234, tmp_path, "numeric", "shipped").problems}

    def answer(lm, record) -> str:
        prompt = utils.chat_prompt_ids(lm.tokenizer, [questions[record["problem_id"]]])[0]
        thinking = [t for t in rows[record["problem_id"]]["token_ids"][:8]
                    if t not in lm.eos_ids]
        ids = torch.tensor([prompt + thinking + cue])
        out = lm.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=4,
                                do_sample=False, eos_token_id=list(lm.eos_ids),
                                pad_token_id=lm.pad_id)
        return utils.decode_text(lm.tokenizer, out[0, ids.shape[1]:].tolist())

    assert [r["forced_answer"] for r in records] == [answer(cut, r) for r in records]
    assert [r["forced_answer"] for r in records] != [answer(full, r) for r in records]
