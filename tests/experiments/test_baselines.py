"""llm4sbr_adapter.experiments.baselines on hand-made data: sessions, SR, tie-breaking, selection, CLI (kNN and
STAN scores: test_baselines_knn.py)."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from llm4sbr_adapter.experiments import baselines as bl
from llm4sbr_adapter.experiments.data.splits import SplitData
from llm4sbr_adapter.experiments.evaluation.metrics import target_ranks
from llm4sbr_adapter.experiments.evaluation.summarize import load_named_runs, load_runs


def arrays(*seqs: list[int]) -> list[np.ndarray]:
    return [np.asarray(s, dtype=np.int64) for s in seqs]


def write_split(folder: Path, split: str, rows: list[list[int]]) -> None:
    """``rows``: full sequences; the last item of each is the target."""
    with open(folder / f"{split}.txt", "wb") as handle:
        pickle.dump(([r[:-1] for r in rows], [r[-1] for r in rows]), handle)


def write_rows_tsv(folder: Path, split: str, users: list[str], header: str = "row\tuser_id\textra") -> None:
    lines = [header] + [f"{r}\t{u}\tx" for r, u in enumerate(users)]
    (folder / f"rows_{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------- training sessions
def test_training_sessions_merge_prefixes_per_user() -> None:
    rows = [[1, 2], [1, 2, 3], [1, 2, 3, 4], [1, 2], [1, 2, 3, 4], [5, 6], [5, 6]]
    users = np.array([0, 0, 0, 1, 2, 3, 3])  # user 0: prefix chain; 2 repeats user 0's full sequence; 3: a duplicate
    data = SplitData.from_lists([r[:-1] for r in rows], [r[-1] for r in rows])
    kept = [s.tolist() for s in bl.training_sessions(data, users)]
    assert kept == [[1, 2, 3, 4], [1, 2], [1, 2, 3, 4], [5, 6]]
    assert [s.tolist() for s in bl.training_sessions(data)] == rows  # without users every row is a session


def test_read_row_users_follows_row_column_and_rejects_bad_header(tmp_path: Path) -> None:
    (tmp_path / "rows_train.tsv").write_text("user_id\trow\nbob\t2\nann\t0\nbob\t1\n", encoding="utf-8")
    users = bl.read_row_users(tmp_path, "train")
    assert users[1] == users[2] != users[0]
    assert bl.read_row_users(tmp_path, "valid") is None
    write_rows_tsv(tmp_path, "test", ["a"], header="row\tuser")
    with pytest.raises(ValueError, match=r"rows_test.tsv: line 1: .*'user_id'"):
        bl.read_row_users(tmp_path, "test")


# --------------------------------------------------------------------------- model scores
def test_markov_and_sequential_rules_weights() -> None:
    sessions = arrays([1, 2, 3, 2], [1, 3])
    markov = bl.ItemTransitions().fit(sessions, 4)
    np.testing.assert_array_equal(markov.raw_scores(arrays([1], [2])).toarray(), [[0, 1, 1, 0], [0, 0, 1, 0]])
    sr = bl.SequentialRules(steps=2).fit(sessions, 4)
    # from 1: (1,2) d=1 -> 1, (1,3) d=2 -> 1/2 and (1,3) d=1 in the second session -> 1: item 3 gets 1.5
    # from 2: (2,3) d=1 -> 1, (2,2) d=2 -> 1/2
    np.testing.assert_allclose(sr.raw_scores(arrays([4, 1], [2])).toarray(), [[0, 1, 1.5, 0], [0, 0.5, 1, 0]])
    sr3 = bl.SequentialRules(steps=3).fit(sessions, 4)
    assert sr3.raw_scores(arrays([1]))[0, 1] == pytest.approx(1 + 1 / 3)  # (1,2) at d=1 and d=3


def test_popularity_breaks_ties_below_nonzero_scores() -> None:
    sessions = arrays([1, 2], [3, 4, 3, 4], [4, 5], [4, 3])  # popularity: 4 > 3 > 1 = 2 = 5 > 6 (unseen)
    model = bl.ItemTransitions().fit(sessions, 6)
    scores = model.scores(arrays([2], [1]))
    # row 0: item 2 has no successor -> pure popularity order
    ranks = target_ranks(torch.from_numpy(scores), torch.tensor([3, 2]))  # items 4 and 3
    assert ranks.tolist() == [1, 3]  # row 1: item 2 (score 1) first, then 4, then 3 by popularity
    assert np.argsort(-scores[0], kind="stable").tolist()[:3] == [3, 2, 0]
    assert scores[1, 1] > scores[1, 3]  # a nonzero score beats any popularity
    assert (scores[:, 5] < scores[:, :5].min(1)).all()  # the unseen item is last
    pop = bl.Popularity().fit(sessions, 6).scores(arrays([1]))[0]
    assert target_ranks(torch.from_numpy(pop[None]), torch.tensor([4])).item() == 5  # item 5 ties with 1 and 2


def test_tie_break_is_exact_for_close_scores() -> None:
    raw = sp.csr_matrix(np.array([[1.0, 1.0 + 1e-15, 0.0, 0.0]]))
    out = bl.popularity_tie_break(raw, np.array([0.0, 5.0, 9.0, 1.0]))
    assert np.argsort(-out[0]).tolist() == [1, 0, 2, 3]


def test_exclude_seen_ranks_prefix_items_last() -> None:
    sessions = arrays([1, 2, 3], [1, 4])
    model = bl.SessionKNN(k=5, exclude_seen=True).fit(sessions, 4)
    scores = model.scores(arrays([1]))[0]
    assert scores[0] == -1 and scores[1:].min() >= 0
    both = bl.evaluate_exclusions(model, bl.Queries(SplitData.from_lists([[1]], [1])))
    assert both[True][0] == 4 and both[False][0] == 1  # target 1 is the prefix's own item
    assert model.exclude_seen  # restored


def test_selection_with_nothing_to_choose_names_the_inputs() -> None:
    valid = SplitData.from_lists([[1]], [2])
    with pytest.raises(ValueError, match="nothing to choose from .*exclusions \\[\\]"):
        bl.select_on_valid("pop", bl.SPACES["pop"], arrays([1, 2]), bl.Queries(valid), 3, [1], "HR@1", exclusions=())


# --------------------------------------------------------------------------- selection and CLI
def selection_data(folder: Path) -> Path:
    """Valid prefers SR steps=1 (target 2), test prefers steps>=2 (target 3)."""
    train = [[1, 2], [1, 2]] + [[1, a, 3] for a in range(4, 9)]
    write_split(folder, "train", train)
    write_split(folder, "valid", [[1, 2]])
    write_split(folder, "test", [[1, 3]])
    return folder


def test_hyperparameters_are_chosen_on_valid(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    data = selection_data(tmp_path / "d")
    assert bl.main(["--data", str(data), "--runs", str(tmp_path / "runs"), "--models", "sr"]) == 0
    res = json.loads((tmp_path / "runs" / "sr_s0.json").read_text())
    assert res["config"]["params"]["steps"] == 1
    assert res["valid_at_best"]["MRR@20"] == 1.0
    # steps=1: 3 has score 0; 2 (score 2), 4..8 (1 each) and the more popular 1 are ahead of it -> rank 8
    assert res["test"]["MRR@20"] == pytest.approx(1 / 8)
    steps2 = [g for g in res["valid_grid"] if g["params"] == {"steps": 2, "exclude_seen": False}]
    assert steps2[0]["MRR@20"] == 0.5


@pytest.fixture
def selection_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    return selection_data(folder)


def test_cli_writes_results_summarize_reads(selection_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    write_rows_tsv(selection_dir, "train", ["u1", "u1", "u2", "u3", "u4", "u5", "u6"])
    runs = tmp_path / "runs"
    argv = [
        "--data",
        str(selection_dir),
        "--runs",
        str(runs),
        "--models",
        "pop",
        "sknn",
        "vsknn",
        "markov",
        "--seed",
        "3",
    ]
    assert bl.main(argv) == 0
    groups = load_runs(runs)
    assert sorted(groups) == [("markov", False), ("pop", False), ("sknn", False), ("vsknn", False)]
    res = groups[("sknn", False)][0]
    assert res["seed"] == 3 and res["rows"] == {"train": 7, "valid": 1, "test": 1}
    assert res["config"]["training_sessions"] == 6  # u1's [1, 2] appears twice
    assert len(res["valid_grid"]) % 2 == 0 and res["config"]["search_values"]["k"] == list(
        bl.SPACES["sknn"].values["k"]
    )
    ranks = np.load(runs / res["ranks_file"])
    assert ranks["test_ranks"].dtype == np.int64 and ranks["valid_ranks"].shape == (1,)
    assert ranks["test_targets"].tolist() == [3]
    assert sorted(load_named_runs(runs)) == ["markov", "pop", "sknn", "vsknn"]
    capsys.readouterr()
    assert bl.main(argv[:4] + ["--models", "pop", "--seed", "3"]) == 0
    assert "skipped" in capsys.readouterr().out


def test_bad_rows_file_is_a_one_line_error(selection_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    write_rows_tsv(selection_dir, "train", ["u"] * 7, header="row\tuser")
    assert bl.main(["--data", str(selection_dir), "--runs", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "rows_train.tsv: line 1" in err[0]


def test_missing_data_folder_exits_2_without_traceback(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "llm4sbr_adapter.experiments.baselines",
            "--data",
            str(tmp_path / "nope"),
            "--runs",
            str(tmp_path / "runs"),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "train.txt" in lines[0]
    assert not (tmp_path / "runs").exists()


OLD_FLAGS = [
    ["--models", "sr", "pop"],
    ["--seed", "4"],
    ["--name-suffix", "_x"],
    ["--topk", "10", "20"],
    ["--select-metric", "HR@20"],
    ["--batch-size", "16"],
    ["--threads", "1"],
    ["--exclude-seen", "never"],
    ["--force"],
]


def test_every_flag_spelling_of_the_old_cli_still_parses(tmp_path: Path) -> None:
    base = ["--data", str(tmp_path), "--runs", str(tmp_path / "r")]
    config = bl.parse_args(base + [token for flag in OLD_FLAGS for token in flag])
    assert config.models == ("sr", "pop") and config.seed == 4 and config.suffix == "_x"
    assert config.topk == (10, 20) and config.select_metric == "HR@20" and config.batch_size == 16
    assert config.exclude_seen == "never" and config.force
    default = bl.parse_args(base)
    assert default.models == tuple(bl.MODELS) and default.suffix == "_s0" and default.exclude_seen == "choose"


@pytest.mark.parametrize(
    ("flags", "named"),
    [(["--models", "sknn", "nope"], "--models"), (["--batch-size", "0"], "--batch-size"), (["--topk", "5"], "--topk")],
)
def test_a_bad_flag_value_is_one_line_naming_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture, flags: list[str], named: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        bl.parse_args(["--data", str(tmp_path), "--runs", str(tmp_path)] + flags)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and named in err[0]


def test_without_scipy_the_command_says_which_extra_to_install(tmp_path: Path) -> None:
    # sys.modules[name] = None makes every later `import name` fail, as on an install without the extra
    code = (
        "import runpy, sys; sys.modules['scipy'] = None; "
        f"sys.argv = ['baselines', '--data', {str(tmp_path)!r}, '--runs', {str(tmp_path)!r}]; "
        "runpy.run_module('llm4sbr_adapter.experiments.baselines', run_name='__main__')"
    )
    proc = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines == ['error: scipy is not installed (needed for the simple baselines): pip install -e ".[examples]"']


def test_edges_of_the_search_space_are_reported() -> None:
    space = bl.SPACES["vsknn"]
    chosen = {"k": 5000, "sample_size": 100, "weighting": "div", "weighting_score": "div", "idf_weighting": 1000.0}
    assert bl.on_edge(space, chosen) == [
        "k=5000 (largest tried)",
        "sample_size=100 (smallest tried)",
        "idf_weighting=1000.0 (largest tried)",
    ]
    # 0 = every candidate / IDF off are limits by definition; 10000 has "every candidate" above it
    inner = {**chosen, "k": 100, "sample_size": 10000, "idf_weighting": 0.0}
    assert bl.on_edge(space, inner) == [] and bl.on_edge(space, {**inner, "sample_size": 0}) == []


def test_stan_time_scale_has_no_recency_above_its_largest_number() -> None:
    space = bl.SPACES["stan"]
    start = dict(space.start)
    assert bl.on_edge(space, {**start, "lambda_snh": 3000.0}) == []  # 0 (no recency factor) lies above it
    assert bl.on_edge(space, {**start, "lambda_snh": 0.0}) == []  # a limit by definition
    assert bl.on_edge(space, {**start, "lambda_snh": 0.25}) == ["lambda_snh=0.25 (smallest tried)"]


def test_edges_are_printed_by_the_command(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "d").mkdir()
    data = selection_data(tmp_path / "d")
    assert bl.main(["--data", str(data), "--runs", str(tmp_path / "runs"), "--models", "sr"]) == 0
    out = capsys.readouterr().out
    assert "ON THE EDGE of its grid: steps=1 (smallest tried)" in out  # valid prefers steps=1
    res = json.loads((tmp_path / "runs" / "sr_s0.json").read_text())
    assert res["config"]["on_edge"] == ["steps=1 (smallest tried)"]


def test_prefix_times_are_the_last_click_of_the_same_user(tmp_path: Path) -> None:
    header = "row\tuser_id\ttarget_position\ttarget_time\n"
    (tmp_path / "rows_train.tsv").write_text(header + "0\tann\t1\t100\n1\tann\t2\t200\n", encoding="utf-8")
    (tmp_path / "rows_valid.tsv").write_text(header + "0\tann\t3\t350\n1\tbob\t4\t900\n", encoding="utf-8")
    infos = {split: bl.read_rows(tmp_path, split) for split in ("train", "valid")}
    # ann's valid target is click 3; click 2 (a train target) happened at 200; bob has no earlier row: own time
    np.testing.assert_array_equal(bl.prefix_times(infos, "valid"), [200.0, 900.0])
    (tmp_path / "rows_test.tsv").write_text(header + "0\tann\tx\t1\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"rows_test.tsv: line 2: column 'target_position'"):
        bl.read_rows(tmp_path, "test")
