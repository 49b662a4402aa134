"""The schedule search command with a fake trainer: run names, train flags, reuse of existing run JSONs
(a resumed search, the old grid's runs), the search files and the printed lines, failures."""

from __future__ import annotations

import json
import math
import pickle
import threading

import numpy as np
import pytest

from llm4sbr_adapter.experiments.training import schedule_search
from llm4sbr_adapter.experiments.training.schedule_runs import lr_text
from llm4sbr_adapter.experiments.training.schedule_search import ScheduleSearchConfig, run_searches


def surface(model: str, enhancer: bool, lr: float, step: int) -> float:
    """srgnn peaks at (2e-3, 6), narm at (1e-3, 12); + enhancer shifts the lr peak down by half."""
    lr_best, step_best = {"srgnn": (2e-3, 6), "narm": (1e-3, 12)}[model]
    lr_best /= 2 if enhancer else 1
    return 0.2 - 0.01 * (math.log2(lr / lr_best) ** 2 + math.log2(step / step_best) ** 2)


class FakeTrain:
    """Stands in for ``experiments.training.train``: writes the result JSON the command reads."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.commands: list[list[str]] = []
        self.fail_on = fail_on
        self.lock = threading.Lock()

    def __call__(self, command: list[str]) -> tuple[int, str]:
        with self.lock:
            self.commands.append(command)
        flags = {command[i]: command[i + 1] for i in range(len(command) - 1) if command[i].startswith("--")}
        if self.fail_on is not None and flags["--out"].endswith(self.fail_on):
            return 1, "loading data\nerror: --data x: no train.txt\n"
        settings = {
            "epochs": int(flags["--epochs"]),
            "patience": int(flags["--patience"]),
            "seed": int(flags["--seed"]),
        }
        lr, step = float(flags["--lr"]), int(flags["--lr-step"])
        write_run(flags["--out"], flags["--model"], "--enhancer" in command, lr, step, **settings)
        return 0, ""

    def outs(self) -> list[str]:
        return sorted(c[c.index("--out") + 1].rsplit("/", 1)[1] for c in self.commands)


def write_run(path, model, enhancer, lr, step, *, epochs=30, patience=3, seed=0, best_epoch=None, prefix="text_mean"):
    settings = {"epochs": epochs, "patience": patience, "seed": seed, "exclude_seen": "choose"}
    run = {
        "model": model,
        "enhancer": enhancer,
        "stores": {"train": f"/d/stores/{prefix}_train.safetensors"} if enhancer else {},
        "config": {"lr": lr, "lr_step": step, **settings},
        "valid_at_best": {"MRR@20": surface(model, enhancer, lr, step)},
        "best_epoch": best_epoch if best_epoch is not None else min(step + 2, 30),
        "prefix_items_last": lr > 1e-3,
        "epochs_run": 12,
    }
    with open(path, "w") as f:
        json.dump(run, f)


@pytest.fixture()
def folders(tmp_path):
    data = tmp_path / "seed0"
    (data / "stores").mkdir(parents=True)
    for split in ("train", "valid", "test"):
        (data / f"{split}.txt").write_bytes(b"x")
        (data / "stores" / f"text_mean_{split}.safetensors").write_bytes(b"x")
    return data, tmp_path / "tune23"


def config(data, out, **changes):
    return ScheduleSearchConfig(data=str(data), out=str(out), **changes)


def test_two_models_two_variants_share_the_jobs_and_write_their_choices(folders):
    data, out = folders
    fake = FakeTrain()
    records = run_searches(config(data, out, models=("srgnn", "narm"), variants=("alone", "enh"), jobs=2), fake)
    assert [(r["model"], r["variant"]) for r in records] == [
        ("srgnn", "alone"),
        ("srgnn", "enh"),
        ("narm", "alone"),
        ("narm", "enh"),
    ]
    chosen = {(r["model"], r["variant"]): (r["chosen"]["lr"], r["chosen"]["lr_step"]) for r in records}
    assert chosen == {
        ("srgnn", "alone"): (2e-3, 6),
        ("srgnn", "enh"): (1e-3, 6),
        ("narm", "alone"): (1e-3, 12),
        ("narm", "enh"): (5e-4, 12),
    }
    # srgnn alone: lr list at step 6, 2e-3 is the top -> 4e-3; then the steps at 2e-3
    srgnn = records[0]
    assert srgnn["batches"] == [
        ["srgnn_lr5e-4_step6.json", "srgnn_lr1e-3_step6.json", "srgnn_lr2e-3_step6.json"],
        ["srgnn_lr4e-3_step6.json"],
        ["srgnn_lr2e-3_step3.json", "srgnn_lr2e-3_step12.json"],
    ]
    assert (
        srgnn["line"] == "srgnn\talone\t2e-3\t6\tvalid MRR@20 0.2000, best epoch 8, prefix last True\tinside the grid"
    )
    assert srgnn["lrs_tried"] == [5e-4, 1e-3, 2e-3, 4e-3] and srgnn["notes"] == []
    narm = records[2]  # step 12 is the top -> 24
    assert narm["steps_tried"] == [3, 6, 12, 24] and narm["widened"]["step high"] == 1
    on_disk = json.loads((out / "narm_enh.search.json").read_text())
    assert on_disk == json.loads(json.dumps(records[3]))
    assert len(fake.commands) == sum(len(r["points"]) for r in records)  # each run once


def test_a_run_gets_the_train_flags(folders):
    data, out = folders
    fake = FakeTrain()
    run_searches(config(data, out, variants=("alone", "enh"), seed=2, patience=4), fake)
    alone = next(c for c in fake.commands if c[c.index("--out") + 1].endswith("srgnn_lr1e-3_step6.json"))
    enh = next(c for c in fake.commands if c[c.index("--out") + 1].endswith("srgnn_enh_lr1e-3_step6.json"))
    assert alone[1:3] == ["-m", "llm4sbr_adapter.experiments.training.train"]
    text = " ".join(alone)
    for part in (
        "--threads 1",
        "--epochs 30",
        "--patience 4",
        "--seed 2",
        "--lr 1e-3 --lr-step 6",
        "--exclude-seen choose",
    ):
        assert part in text
    assert alone[-1] == "--quiet" and "--enhancer" not in alone
    assert " ".join(enh).endswith(
        f"--quiet --enhancer --store-train {data}/stores/text_mean_train.safetensors "
        f"--store-valid {data}/stores/text_mean_valid.safetensors --store-test {data}/stores/text_mean_test.safetensors"
    )


def test_existing_runs_are_read_not_rerun_whatever_their_lr_spelling(folders):
    data, out = folders
    out.mkdir()
    for lr_name, lr in (("0.0005", 5e-4), ("1e-3", 1e-3), ("2e-3", 2e-3)):  # the old grid's, one spelled 0.0005
        for step in (3, 6, 12):
            write_run(out / f"srgnn_lr{lr_name}_step{step}.json", "srgnn", False, lr, step)
    fake = FakeTrain()
    (record,) = run_searches(config(data, out), fake)
    assert fake.outs() == ["srgnn_lr4e-3_step6.json"]  # only the widening point is new
    assert record["batches"][0] == ["srgnn_lr0.0005_step6.json", "srgnn_lr1e-3_step6.json", "srgnn_lr2e-3_step6.json"]
    again = FakeTrain()
    assert run_searches(config(data, out), again) == [record]  # a rerun trains nothing
    assert again.commands == []


def test_a_better_run_off_the_search_path_is_noted(folders):
    data, out = folders
    out.mkdir()
    write_run(out / "srgnn_lr5e-4_step24.json", "srgnn", False, 5e-4, 24)
    with open(out / "srgnn_lr5e-4_step24.json") as f:
        run = json.load(f)
    run["valid_at_best"]["MRR@20"] = 0.5  # better than the surface's peak: a grid point the search does not visit
    (out / "srgnn_lr5e-4_step24.json").write_text(json.dumps(run))
    run["config"]["epochs"] = 10  # another setting: not comparable, not noted
    (out / "srgnn_lr4e-4_step24.json").write_text(json.dumps({**run, "config": {**run["config"], "lr": 4e-4}}))
    (record,) = run_searches(config(data, out), FakeTrain())
    assert record["chosen"]["file"] == "srgnn_lr2e-3_step6.json"
    assert record["notes"] == ["off the search's path, srgnn_lr5e-4_step24.json (0.5000) scored higher"]


def test_a_run_with_other_settings_is_refused(folders):
    data, out = folders
    out.mkdir()
    write_run(out / "srgnn_lr1e-3_step6.json", "srgnn", False, 1e-3, 6, epochs=20)
    with pytest.raises(ValueError, match=r"srgnn_lr1e-3_step6.json: epochs is 20, this search runs 30"):
        run_searches(config(data, out), FakeTrain())


def test_an_enh_run_on_other_stores_is_refused(folders):
    data, out = folders
    out.mkdir()
    write_run(out / "srgnn_enh_lr1e-3_step6.json", "srgnn", True, 1e-3, 6, prefix="llm_f5")
    with pytest.raises(ValueError, match=r"train store is 'llm_f5_train.safetensors', this search runs 'text_mean_tr"):
        run_searches(config(data, out, variants=("enh",)), FakeTrain())


def test_the_last_allowed_epoch_and_a_capped_edge_are_noted(folders):
    data, out = folders
    out.mkdir()
    write_run(out / "srgnn_lr2e-3_step6.json", "srgnn", False, 2e-3, 6, best_epoch=30)
    (record,) = run_searches(config(data, out, space={"max_extensions": 0}), FakeTrain())
    assert record["notes"] == ["lr 2e-3 is the largest tried", "best epoch 30 is the last allowed"]
    assert record["line"].endswith("\tlr 2e-3 is the largest tried; best epoch 30 is the last allowed")


def test_a_failed_run_stops_the_command_with_its_last_line(folders):
    data, out = folders
    fake = FakeTrain(fail_on="srgnn_lr2e-3_step6.json")
    with pytest.raises(RuntimeError, match=r"srgnn_lr2e-3_step6.json failed \(exit 1\): error: --data x: no train.txt"):
        run_searches(config(data, out, jobs=1), fake)
    assert not (out / "srgnn_alone.search.json").exists()


def test_enh_needs_its_stores(folders):
    data, out = folders
    (data / "stores" / "text_mean_valid.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="text_mean_valid.safetensors not found"):
        run_searches(config(data, out, variants=("enh",)), FakeTrain())


def test_the_command_prints_one_line_per_search(folders, monkeypatch, capsys):
    data, out = folders
    fake = FakeTrain()
    real = schedule_search.TrainRuns
    monkeypatch.setattr(schedule_search, "TrainRuns", lambda config: real(config, fake))
    argv = ["--data", str(data), "--out", str(out), "--model", "srgnn", "narm", "--lrs", "1e-3", "2e-3"]
    assert schedule_search.main([*argv, "--steps", "6", "12", "--start-step", "12", "--max-extensions", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[:4] for line in lines] == [
        ["srgnn", "alone", "2e-3", "6"],
        ["narm", "alone", "1e-3", "12"],
    ]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--variants", "both"], "error: --variants must be distinct values of ['alone', 'enh'], got ['both']"),
        (["--model", "gru"], "error: --models must be distinct values of"),
        (["--lrs", "0"], "error: --lrs must be one or more positive numbers, got [0.0]"),
    ],
)
def test_bad_flags_are_one_line(folders, capsys, flags, message):
    data, out = folders
    assert schedule_search.main(["--data", str(data), "--out", str(out), *flags]) == 1
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_a_real_search_on_a_tiny_split(tmp_path, capsys):
    """Two real train runs (one epoch each, in parallel) and the choice between them (26 s on the busy
    2-core machine, mostly two torch imports)."""
    rng = np.random.default_rng(0)
    data = tmp_path / "tiny"
    data.mkdir()
    for split, n in (("train", 60), ("valid", 20), ("test", 20)):
        seqs = [rng.integers(1, 13, size=int(rng.integers(1, 5))).tolist() for _ in range(n)]
        with open(data / f"{split}.txt", "wb") as f:
            pickle.dump((seqs, rng.integers(1, 13, size=n).tolist()), f)
    out = tmp_path / "tune"
    argv = ["--data", str(data), "--out", str(out), "--model", "stamp", "--lrs", "1e-3", "2e-3", "--steps", "1"]
    argv += ["--start-step", "1", "--max-epochs", "1", "--max-extensions", "0", "--jobs", "2"]
    assert schedule_search.main(argv) == 0
    (line,) = capsys.readouterr().out.splitlines()
    record = json.loads((out / "stamp_alone.search.json").read_text())
    runs = {p["file"]: json.loads((out / p["file"]).read_text()) for p in record["points"]}
    assert sorted(runs) == ["stamp_lr1e-3_step1.json", "stamp_lr2e-3_step1.json"]
    best = max(runs.values(), key=lambda r: r["valid_at_best"]["MRR@20"])
    assert line.split("\t")[2:4] == [lr_text(best["config"]["lr"]), "1"]
    assert all(r["config"]["threads"] == 1 and r["config"]["exclude_seen"] == "choose" for r in runs.values())
