"""The one study config: defaults, YAML, flags derived from the fields, and their precedence."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import phase1b_stochastic
import phase3_cliff
import run_all
from config import DEMO_CONFIG, StudyConfig, from_mapping, load_yaml
from study import config_mapping
from study.cli import config_from_args
from study.errors import ConfigError


def parse(parser, argv, base=None) -> StudyConfig:
    return config_from_args(parser.parse_args(argv), base)


def leaf_fields(cls=StudyConfig, prefix=""):
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(f.type if not isinstance(f.type, str) else
                                    config_mapping.field_type(cls, f.name)):
            yield from leaf_fields(config_mapping.field_type(cls, f.name), f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", f


def test_every_field_has_help_and_every_flag_appears_once_in_run_all():
    help_text = run_all.build_parser().format_help()
    flags = []
    for path, f in leaf_fields():
        assert f.metadata.get("help"), f"{path} has no help text"
        if f.metadata.get("flag"):
            flags.append(f.metadata["flag"])
            assert f.metadata["flag"] in help_text, path
    assert len(flags) == len(set(flags)), "two fields share a flag"


def test_defaults_round_trip_through_a_plain_dict():
    cfg = StudyConfig()
    assert from_mapping(cfg.to_dict()) == cfg
    assert cfg.to_dict()["phase1"]["budgets"] == [32, 64, 128, 256, 512, 1024, 2048]
    assert cfg.annotation.samples == {128: 30, 256: 30, 512: 50, 1024: 50}


def test_precedence_defaults_yaml_flags(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_text("seed: 7\nmodel: {name: qwen-7b, batch_size: 8}\nphase1: {budgets: [64, 32]}\n")
    cfg = parse(run_all.build_parser(), ["--config", str(path), "--batch-size", "4"])
    assert cfg.seed == 7 and cfg.model.name == "qwen-7b"  # from the file
    assert cfg.model.batch_size == 4  # the flag wins over the file
    assert cfg.phase1.budgets == (32, 64)  # sorted
    assert cfg.data.dataset == "gsm8k"  # untouched default


def test_a_phase_script_maps_its_short_flags_to_its_own_section():
    cfg = parse(phase1b_stochastic.PARSER, ["--budgets", "8", "4", "--samples", "3",
                                                    "--temperature", "0.5"])
    assert cfg.phase1b.budgets == (4, 8) and cfg.phase1b.samples == 3
    assert cfg.phase1b.temperature == 0.5
    assert cfg.phase1.budgets == StudyConfig().phase1.budgets  # other sections untouched
    assert cfg.generation.temperature == 0.0
    cliff = parse(phase3_cliff.PARSER, ["--budgets", "16", "32"])
    assert cliff.phase3.budgets == (16, 32)
    everywhere = parse(run_all.build_parser(), ["--cliff-budgets", "16", "32"])
    assert everywhere.phase3.budgets == (16, 32)


def test_demo_flag_is_the_demo_yaml():
    demo = parse(run_all.build_parser(), ["--demo"], load_yaml(DEMO_CONFIG))
    via_file = parse(run_all.build_parser(), ["--all", "--config", str(DEMO_CONFIG)])
    assert demo == via_file
    assert demo.model.name == "smollm2-135m" and demo.annotation.auto_annotate


@pytest.mark.parametrize("text, message", [
    ("modle: {name: x}\n", "modle: unknown key"),
    ("model: {nme: x}\n", "model.nme: unknown key"),
    ("seed: abc\n", "seed: expected int"),
    ("phase1: {budgets: 64}\n", "phase1.budgets: expected a list"),
    ("model: {precision: fp8}\n", "model.precision: 'fp8' is not one of"),
    ("annotation: {auto_annotate: 'yes'}\n", "annotation.auto_annotate: expected true or false"),
    ("model: [1, 2]\n", "model must be a mapping"),
    ("seed: [\n", "not valid YAML"),
])
def test_bad_yaml_names_the_file_and_the_key(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_yaml(path)
    assert message in str(exc.value) and str(path) in str(exc.value)


def test_missing_yaml_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read it"):
        load_yaml(tmp_path / "nope.yaml")


def test_replace_returns_a_copy_and_leaves_the_original():
    base = StudyConfig()
    changed = base.replace({"model.name": "qwen-7b", "paths.results_dir": "/tmp/r"})
    assert changed.model.name == "qwen-7b" and changed.paths.results_dir == Path("/tmp/r")
    assert base.model.name == "qwen-1.5b"
    with pytest.raises(dataclasses.FrozenInstanceError):
        base.seed = 3  # type: ignore[misc]




VARIANTS = {"num_layers": {"model.num_layers": 12},
            "budget_mode": {"forcing.budget_mode": "force-continue"},
            "decoding": {"generation.decoding": "power"}}


@pytest.mark.parametrize("script", ["phase1_main", "phase1b_stochastic", "phase2_prepare",
                                    "phase2_annotate", "phase2_analyze", "phase3_cliff",
                                    "phase3_structure", "phase_depth", "phase_lens",
                                    "phase4_compute", "visualize"])
def test_run_flags_select_the_same_files_as_the_model_tag(script):
    """"Run this next" hints repeat run_flags: a script must accept the flags of every kind of
    run it is said to make (SummaryFile.accepts) and parse them back to the same model tag, and
    refuse the others (the report then leaves its summary out for such runs)."""
    import importlib
    import shlex

    from study.cli import config_from_args
    from study.results import RUN_VARIANTS, SUMMARIES

    parser = importlib.import_module(script).PARSER
    entries = [e for e in SUMMARIES.values() if e.script == f"{script}.py"]
    accepts = entries[0].accepts if entries else RUN_VARIANTS  # phase 2's helpers, visualize
    assert all(e.accepts == accepts for e in entries)
    base = StudyConfig().replace({"model.name": "smollm2-135m"})
    for kind, change in VARIANTS.items():
        cfg = base.replace(change)
        assert cfg.run_variant == {kind}
        argv = shlex.split(cfg.run_flags)
        if kind in accepts:
            assert config_from_args(parser.parse_args(argv)).model_tag == cfg.model_tag
        else:
            with pytest.raises(SystemExit):
                parser.parse_args(argv)
    both = base.replace({k: v for kind in accepts for k, v in VARIANTS[kind].items()})
    back = config_from_args(parser.parse_args(shlex.split(both.run_flags)))
    assert back.model_tag == both.model_tag and back.run_variant == accepts


def test_scripts_import_no_torch_so_bad_flags_fail_fast():
    """A bad flag or file must fail in about a second: no script imports torch, transformers,
    scipy or math-verify before it needs them (the engine and scipy load on first use)."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    scripts = ["config", "run_all", "phase1_main", "phase1b_stochastic", "phase2_prepare",
               "phase2_annotate", "phase2_analyze", "phase3_cliff", "phase3_structure",
               "phase_depth", "phase_lens", "phase4_compute", "visualize", "compare"]
    heavy = ("torch", "transformers", "scipy", "math_verify")
    probe = (f"import importlib, json, sys\nseen = {{}}\nfor name in {scripts!r}:\n"
             "    importlib.import_module(name)\n"
             f"    seen[name] = [m for m in {heavy!r} if m in sys.modules]\n"
             "print(json.dumps(seen))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parent.parent).stdout
    assert json.loads(out) == {name: [] for name in scripts}
