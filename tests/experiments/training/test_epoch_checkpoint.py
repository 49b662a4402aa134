"""A killed training run resumes after its last finished epoch and ends as an uninterrupted run would."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from test_training_harness import _write_dataset

from llm4sbr_adapter.experiments.models.backbones import BACKBONES
from llm4sbr_adapter.experiments.models.recommender import Session
from llm4sbr_adapter.experiments.training import loop, train
from llm4sbr_adapter.experiments.training.loop import TrainConfig, fit_and_evaluate, load_run_data
from llm4sbr_adapter.experiments.training.run_paths import checkpoint_path, ranks_path


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs, no handler catches it."""


def _run(tmp_path, out: str, *, model: str = "narm", **settings):
    """One run of ``model`` (NARM has dropout: its resumption needs the random generators back)."""
    config = TrainConfig(data=str(tmp_path / "data"), out=str(tmp_path / out), hidden_size=8, **settings)
    _, data, num_items = load_run_data(config)
    return fit_and_evaluate(Session(BACKBONES[model](num_items, config.hidden_size)), data, config)


def _kill_at_epoch(monkeypatch, epoch: int) -> list[int]:
    """Make training die when ``epoch`` starts; returns the list of the epochs that started."""
    real, started = loop.train_epoch, []

    def train_epoch(model, data, config, e, optimizer):
        started.append(e)
        if e == epoch:
            raise Killed
        return real(model, data, config, e, optimizer)

    monkeypatch.setattr(loop, "train_epoch", train_epoch)
    return started


def _outcome(result: dict, out) -> dict:
    """What must not depend on an interruption: metrics, the epoch log without timings, the ranks."""
    timing = ("train_seconds", "valid_seconds")
    ranks = np.load(ranks_path(out))
    return {
        "test": result["test"],
        "best_epoch": result["best_epoch"],
        "valid": result["valid_at_best"],
        "log": [{k: v for k, v in entry.items() if k not in timing} for entry in result["log"]],
        "ranks": {name: ranks[name].tolist() for name in ranks.files},
    }


@pytest.mark.parametrize("model", ["narm", "srgnn"])
def test_a_run_killed_after_two_epochs_resumes_and_ends_as_an_uninterrupted_run(tmp_path, monkeypatch, model):
    _write_dataset(tmp_path / "data")
    whole = _run(tmp_path, "whole.json", model=model, epochs=4, patience=0, lr_step=1, lr_gamma=0.5)
    with monkeypatch.context() as patch:
        _kill_at_epoch(patch, 3)
        with pytest.raises(Killed):
            _run(tmp_path, "part.json", model=model, epochs=4, patience=0, lr_step=1, lr_gamma=0.5)
    assert checkpoint_path(tmp_path / "part.json").is_file() and not (tmp_path / "part.json").exists()
    started = _kill_at_epoch(monkeypatch, 0)
    resumed = _run(tmp_path, "part.json", model=model, epochs=4, patience=0, lr_step=1, lr_gamma=0.5)
    assert started == [3, 4] and resumed["resumed_after_epoch"] == 2 and whole["resumed_after_epoch"] == 0
    assert _outcome(resumed, tmp_path / "part.json") == _outcome(whole, tmp_path / "whole.json")
    assert not checkpoint_path(tmp_path / "part.json").exists()  # gone once the result is written


def test_a_run_killed_after_patience_ran_out_trains_no_further_epoch(tmp_path, monkeypatch):
    _write_dataset(tmp_path / "data")
    whole = _run(tmp_path, "whole.json", epochs=30, patience=1, lr=0.05)
    assert whole["epochs_run"] < 30  # patience stopped it
    real = loop._final_pass
    with monkeypatch.context() as patch:
        patch.setattr(loop, "_final_pass", lambda *a: (_ for _ in ()).throw(Killed()))
        with pytest.raises(Killed):
            _run(tmp_path, "part.json", epochs=30, patience=1, lr=0.05)
    started = _kill_at_epoch(monkeypatch, 0)
    monkeypatch.setattr(loop, "_final_pass", real)
    resumed = _run(tmp_path, "part.json", epochs=30, patience=1, lr=0.05)
    assert started == [] and resumed["resumed_after_epoch"] == whole["epochs_run"]
    assert _outcome(resumed, tmp_path / "part.json") == _outcome(whole, tmp_path / "whole.json")


def test_a_checkpoint_of_other_settings_or_data_is_refused_in_one_line(tmp_path, monkeypatch, capsys):
    _write_dataset(tmp_path / "data")
    common = ["--data", str(tmp_path / "data"), "--out", str(tmp_path / "r.json"), "--hidden-size", "8", "--quiet"]
    common += ["--model", "narm", "--epochs", "3"]
    with monkeypatch.context() as patch:
        _kill_at_epoch(patch, 2)
        with pytest.raises(Killed):
            train.main([*common, "--lr", "0.001"])
    assert train.main([*common, "--lr", "0.002"]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith(f"error: {checkpoint_path(tmp_path / 'r.json')}: ")
    assert "other settings (lr: 0.001 there, 0.002 here)" in err and "delete it" in err
    assert train.main([*common, "--lr", "0.001", "--threads", "2"]) == 0  # threads change speed, not the run
    assert json.loads((tmp_path / "r.json").read_text())["resumed_after_epoch"] == 1

    (tmp_path / "r.json").unlink()
    with monkeypatch.context() as patch:
        _kill_at_epoch(patch, 2)
        with pytest.raises(Killed):
            train.main([*common, "--lr", "0.001"])
    with open(tmp_path / "data" / "train.txt", "rb") as handle:
        seqs, targets = pickle.load(handle)
    with open(tmp_path / "data" / "train.txt", "wb") as handle:
        pickle.dump((seqs[:-1], targets[:-1]), handle)
    assert train.main([*common, "--lr", "0.001"]) == 1
    assert "written by a run with other data (train: " in capsys.readouterr().err


def test_an_unreadable_checkpoint_is_one_line_naming_it(tmp_path, capsys):
    _write_dataset(tmp_path / "data")
    out = tmp_path / "r.json"
    checkpoint_path(out).write_bytes(b"not a checkpoint")
    argv = ["--data", str(tmp_path / "data"), "--out", str(out), "--hidden-size", "8", "--quiet", "--epochs", "1"]
    assert train.main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"{checkpoint_path(out)}: not a readable training checkpoint" in err
