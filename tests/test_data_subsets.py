"""Problem subsets (study.data.subsets): --problem-range, --subset-seed, --problem-ids.

Table-tested on a local file of 20 problems, on the shipped GSM8K (a fixed set) and on the
generated arith set; then through phase 1 on the tiny model: the selection joins the rollout
fingerprint only when set, and shards split what was selected.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import phase1_main
from config import StudyConfig
from study import store
from study.data import subsets
from study.data.datasets import load_dataset, load_problems
from study.data.subsets import Subset
from study.errors import ConfigError, DatasetError
from study.strategies import rollouts

N = 20


@pytest.fixture(scope="module")
def twenty(tmp_path_factory, sums_file) -> Path:
    return sums_file(tmp_path_factory.mktemp("data") / "twenty.jsonl",
                     [(i, i + 1) for i in range(N)])


def ids(dataset, num_samples=None, seed=1234, **subset) -> list[str]:
    return [p.problem_id for p in load_problems(str(dataset), num_samples, seed, Path("data"),
                                                subset=Subset(**subset))]


def positions(problem_ids: list[str]) -> list[int]:
    return [int(i.rsplit("-", 1)[1]) for i in problem_ids]


@pytest.mark.parametrize("num_samples, subset, expected", [
    (None, {}, list(range(N))),
    (5, {}, [0, 1, 2, 3, 4]),  # today's behaviour: the first N
    (None, {"problem_range": "3:7"}, [3, 4, 5, 6]),
    (2, {"problem_range": "3:7"}, [3, 4]),  # N counts within the range
    (None, {"problem_range": "15:20"}, [15, 16, 17, 18, 19]),  # up to the set's end
])
def test_range_and_prefix(twenty, num_samples, subset, expected):
    assert positions(ids(twenty, num_samples, **subset)) == expected


def test_seeded_subset_is_reproducible_nested_and_ordered(twenty):
    a = positions(ids(twenty, 6, subset_seed=7))
    assert a == positions(ids(twenty, 6, subset_seed=7))  # same seed, same problems
    assert a == sorted(a) and len(set(a)) == 6 and a != list(range(6))
    assert positions(ids(twenty, 6, subset_seed=8)) != a  # another seed, others
    # a smaller draw is a subset of a larger one (as prefixes are without a seed)
    assert set(positions(ids(twenty, 3, subset_seed=7))) <= set(a)
    assert set(a) <= set(positions(ids(twenty, 12, subset_seed=7)))
    # within a range
    inside = positions(ids(twenty, 4, subset_seed=7, problem_range="10:20"))
    assert len(inside) == 4 and all(10 <= p < 20 for p in inside)
    # the run seed does not move the draw (only --subset-seed does)
    assert positions(ids(twenty, 6, seed=99, subset_seed=7)) == a


def test_selected_problems_keep_their_position_ids_and_questions(twenty):
    whole = {p.problem_id: p for p in load_problems(str(twenty), None, 1234, Path("data"))}
    picked = load_problems(str(twenty), 4, 1234, Path("data"), subset=Subset(subset_seed=3))
    for p in picked:
        assert whole[p.problem_id] == p


def test_fixed_and_generated_sets(tmp_path):
    gsm = ids("gsm8k", problem_range="1000:1005")
    assert gsm == [f"gsm8k-test-{i:05d}" for i in range(1000, 1005)]
    assert len(ids("gsm8k", 200, subset_seed=1)) == 200
    # a generated set's item i does not depend on how many were generated
    arith = load_problems("arith", None, 5, tmp_path, subset=Subset(problem_range="30:33"))
    first = load_problems("arith", 33, 5, tmp_path)
    assert [p.question for p in arith] == [p.question for p in first[30:]]
    assert [p.problem_id for p in arith] == [p.problem_id for p in first[30:]]


def test_problem_ids_file(twenty, tmp_path):
    listing = tmp_path / "ids.txt"
    listing.write_text("# held-out problems\ntwenty-00012\n\ntwenty-00003  # a comment\n"
                       "twenty-00007\n")
    assert positions(ids(twenty, problem_ids=listing)) == [3, 7, 12]  # the set's order
    assert positions(ids(twenty, 2, problem_ids=listing)) == [3, 7]
    loaded = load_dataset(str(twenty), None, 1234, Path("data"),
                          subset=Subset(problem_ids=listing))
    assert loaded.info["selection"]["problem_ids_file"] == str(listing)


@pytest.mark.parametrize("text, line, says", [
    ("twenty-00001\ntwenty-00099\n", 2, "unknown problem id 'twenty-00099'"),
    ("twenty-00001\n\ngsm8k-test-00001\n", 3, "unknown problem id"),
    ("twenty-00001\ntwenty-00002\ntwenty-00001\n", 3, "repeats line 1"),
    ("twenty-00001 twenty-00002\n", 1, "is not one id"),
])
def test_bad_ids_name_the_file_and_line(twenty, tmp_path, text, line, says):
    listing = tmp_path / "ids.txt"
    listing.write_text(text)
    with pytest.raises(DatasetError) as exc:
        ids(twenty, problem_ids=listing)
    message = str(exc.value)
    assert message.startswith(f"{listing}:{line}: ") and says in message
    assert "\n" not in message


def test_bad_ids_files(twenty, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n\n")
    with pytest.raises(DatasetError, match="lists no ids"):
        ids(twenty, problem_ids=empty)
    with pytest.raises(DatasetError, match="cannot read it"):
        ids(twenty, problem_ids=tmp_path / "missing.txt")
    with pytest.raises(DatasetError, match="has 20 problems"):
        ids(twenty, problem_range="15:21")


@pytest.mark.parametrize("subset, num_samples, says", [
    (Subset(problem_range="7:3"), None, "--problem-range '7:3'"),
    (Subset(problem_range="a:b"), None, "--problem-range"),
    (Subset(problem_range="1:4", problem_ids=Path("x")), None, "give one"),
    (Subset(subset_seed=1), None, "--num-samples N"),
])
def test_flag_checks(subset, num_samples, says):
    with pytest.raises(ConfigError, match=says):
        subsets.check(subset, num_samples)


def test_cli_errors_are_one_line_exit_2(twenty, tmp_path, capsys, tiny_model_dir):
    listing = tmp_path / "ids.txt"
    listing.write_text("twenty-00001\nnot-an-id\n")
    base = ["--model", str(tiny_model_dir), "--dataset", str(twenty), "--results-dir",
            str(tmp_path / "r"), "--budgets", "4", "--quiet"]
    for extra, says in ((["--problem-ids", str(listing)], f"{listing}:2: unknown problem id"),
                        (["--subset-seed", "3"], "--subset-seed 3"),
                        (["--problem-range", "5"], "--problem-range '5'")):
        assert phase1_main.main([*base, *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and says in err
    assert not (tmp_path / "r").exists() or not list((tmp_path / "r").glob("*.json"))


# ---------------------------------------------------------------- fingerprints and shards

def test_fingerprint_keys_only_when_set(twenty, tmp_path):
    cfg = StudyConfig().replace({"data.dataset": str(twenty), "data.num_samples": 4})
    plan = rollouts.plan_for(cfg, "phase1")
    problems = load_problems(str(twenty), 4, cfg.seed, Path("data"))
    plain = rollouts.rollout_config(cfg, plan, problems)
    assert not {"problem_range", "subset_seed", "problem_ids"} & set(plain)
    listing = tmp_path / "ids.txt"
    listing.write_text("twenty-00001\ntwenty-00002\n")
    seen = {store.fingerprint(plain)}
    for key, value in (("problem_range", "0:4"), ("subset_seed", 0), ("problem_ids", listing)):
        changed = rollouts.rollout_config(cfg.replace({f"data.{key}": value}), plan, problems)
        assert key in changed and store.fingerprint(changed) not in seen
        seen.add(store.fingerprint(changed))
    # the same ids in a moved file keep the fingerprint; other ids change it
    moved = tmp_path / "moved.txt"
    moved.write_text("# same ids\ntwenty-00001\ntwenty-00002\n")
    again = [subsets.fingerprint_keys(Subset(problem_ids=p)) for p in (listing, moved)]
    assert again[0] == again[1]
    moved.write_text("twenty-00001\ntwenty-00003\n")
    assert subsets.fingerprint_keys(Subset(problem_ids=moved)) != again[0]


def test_shards_split_the_selection(tiny_model_dir, twenty, tmp_path):
    """Phase 1 on a seeded subset: two shards merge into the single-process record files."""
    base = ["--model", str(tiny_model_dir), "--dataset", str(twenty), "--budgets", "4",
            "--num-samples", "5", "--subset-seed", "11", "--problem-range", "2:18",
            "--quiet", "--batch-size", "5", "--bootstrap-resamples", "20"]
    single, sharded = tmp_path / "single", tmp_path / "sharded"
    assert phase1_main.main([*base, "--results-dir", str(single)]) == 0
    for shard in ("0/2", "1/2"):
        assert phase1_main.main([*base, "--results-dir", str(sharded), "--shard", shard]) == 0
    name = next(single.glob("phase1_main_*_budget4.json")).name
    records = json.loads((single / name).read_text())
    expected = ids(twenty, 5, subset_seed=11, problem_range="2:18")
    assert [r["problem_id"] for r in records] == expected
    assert (sharded / name).read_bytes() == (single / name).read_bytes()
    summary = store.read_json(next(single.glob("phase1_combined_*.json")))
    prov = summary["provenance"]
    assert prov["rollout_config"]["subset_seed"] == 11
    assert prov["rollout_config"]["problem_range"] == "2:18"
    assert prov["dataset"]["selection"] == {"problem_range": "2:18", "subset_seed": 11}
