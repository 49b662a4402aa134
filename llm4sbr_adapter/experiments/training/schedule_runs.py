"""The training runs behind a schedule search: one :mod:`.train` subprocess per (model, variant, lr, step).

A run writes ``<out>/<model>[_enh]_lr<lr>_step<step>.json`` (the names ``benchmarks/run_beauty_grid.sh``
gave its grid, lr spelled ``5e-4``); a JSON already there (under any spelling of the same lr) is read
instead of training again, once its settings are checked against the search's. At most ``jobs`` runs go at
once, over every search that shares one :class:`TrainRuns`; after a failed run no new run starts.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llm4sbr_adapter.errors import Llm4sbrError, flag_or_name

if TYPE_CHECKING:
    from .schedule_search import ScheduleSearchConfig

__all__ = ["RunCancelled", "RunSummary", "TrainRunError", "TrainRuns", "launch_subprocess", "lr_text", "run_path"]

TRAIN_MODULE = "llm4sbr_adapter.experiments.training.train"
METRIC = "MRR@20"
Launch = Callable[[list[str]], tuple[int, str]]  # a command -> (exit status, its stderr)
logger = logging.getLogger("llm4sbr_adapter.experiments.training.schedule_search")


def lr_text(lr: float) -> str:
    """A learning rate as file names spell it: ``5e-4``, ``2.5e-4``, ``1e-3`` (six significant digits)."""
    mantissa, exponent = f"{lr:.5e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def run_path(out: Path, model: str, variant: str, point: tuple[float, int]) -> Path:
    """``out/<model>[_enh]_lr<lr>_step<step>.json``."""
    stem = model + ("_enh" if variant == "enh" else "")
    return out / f"{stem}_lr{lr_text(point[0])}_step{point[1]}.json"


def same_point(a: tuple[float, int], b: tuple[float, int]) -> bool:
    """The same step and the same lr up to its spelling (``5e-4`` and ``0.0005``)."""
    return a[1] == b[1] and math.isclose(a[0], b[0], rel_tol=1e-9)


@dataclass(frozen=True)
class RunSummary:
    """What a search keeps of one run: its JSON's name, validation MRR@20 at the best epoch, that epoch,
    the ranking rule validation chose (``prefix_items_last``) and the epochs it trained."""

    file: str
    value: float
    best_epoch: int
    prefix_items_last: bool | None
    epochs_run: int | None


class TrainRunError(Llm4sbrError, RuntimeError):
    """A training run exited with an error (its last stderr line is in the message)."""


class RunCancelled(TrainRunError):
    """A run not started because another one failed."""


def launch_subprocess(command: list[str]) -> tuple[int, str]:
    """Run ``command`` (one OpenMP thread), its output captured; ``(exit status, stderr)``."""
    proc = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    return proc.returncode, proc.stderr


class TrainRuns:
    """The runs of every search of one command, ``config.jobs`` at a time; ``summaries`` holds each read run."""

    def __init__(self, config: ScheduleSearchConfig, launch: Launch = launch_subprocess) -> None:
        self.config = config
        self.launch = launch
        self.out = Path(config.out)
        self.pool = ThreadPoolExecutor(max_workers=config.jobs)
        self.failed = threading.Event()
        self.summaries: dict[tuple[str, str, tuple[float, int]], RunSummary] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        """Wait for the runs in flight and stop the pool."""
        self.pool.shutdown()

    def evaluator(self, model: str, variant: str) -> Callable[[Sequence[tuple[float, int]]], list[float]]:
        """``evaluate(points)`` for :func:`.schedule_search.search_schedule`: the points' runs at once."""

        def evaluate(points: Sequence[tuple[float, int]]) -> list[float]:
            futures = [self.pool.submit(self.summary, model, variant, p) for p in points]
            return [f.result().value for f in futures]

        return evaluate

    def summary(self, model: str, variant: str, point: tuple[float, int]) -> RunSummary:
        """The run of ``point``: read when its JSON exists, else trained now (unless a run failed)."""
        path, seconds = self.existing(model, variant, point), None
        if path is None:
            path = run_path(self.out, model, variant, point)
            if self.failed.is_set():
                raise RunCancelled(f"{path.name}: not started, another run failed")
            start = time.perf_counter()
            status, stderr = self.launch(self.command(model, variant, point, path))
            if status != 0:
                self.failed.set()
                last = next((line for line in reversed(stderr.splitlines()) if line.strip()), "(no message)")
                raise TrainRunError(f"training {path} failed (exit {status}): {last.strip()}")
            seconds = time.perf_counter() - start
        summary = self.read(path, model, variant, point)
        how = "read" if seconds is None else f"trained in {seconds:.0f} s"
        logger.info("%s: valid %s %.4f at epoch %d (%s)", path.name, METRIC, summary.value, summary.best_epoch, how)
        with self._lock:
            self.summaries[(model, variant, point)] = summary
        return summary

    def existing(self, model: str, variant: str, point: tuple[float, int]) -> Path | None:
        """The JSON of ``point`` already in the folder (any spelling of its lr), or ``None``."""
        path = run_path(self.out, model, variant, point)
        if path.is_file():
            return path
        return next((p for other, p in self.folder_runs(model, variant) if same_point(other, point)), None)

    def folder_runs(self, model: str, variant: str) -> list[tuple[tuple[float, int], Path]]:
        """Every ``<model>[_enh]_lr<lr>_step<step>.json`` in the folder with its (lr, step), by name."""
        stem = run_path(self.out, model, variant, (1.0, 1)).name.split("_lr")[0]
        pattern = re.compile(rf"{re.escape(stem)}_lr([^_]+)_step(\d+)\.json")
        found = []
        for path in sorted(self.out.glob(f"{stem}_lr*_step*.json")):
            match = pattern.fullmatch(path.name)
            try:
                lr = float(match[1]) if match else math.nan
            except ValueError:
                continue
            if match and math.isfinite(lr) and lr > 0:
                found.append(((lr, int(match[2])), path))
        return found

    def better_elsewhere(
        self, model: str, variant: str, searched: Sequence[tuple[float, int]], value: float
    ) -> list[str]:
        """The names of runs in the folder off the search's points, with this search's settings, that score
        above ``value`` (e.g. an earlier full grid's point that the coordinate search did not reach)."""
        better = []
        for point, path in self.folder_runs(model, variant):
            if any(same_point(point, other) for other in searched):
                continue
            try:
                summary = self.read(path, model, variant, point)
            except ValueError:  # other settings (epochs, patience, ...): not comparable
                continue
            if summary.value > value:
                better.append(f"{path.name} ({summary.value:.4f})")
        return better

    def command(self, model: str, variant: str, point: tuple[float, int], out: Path) -> list[str]:
        """The train command of one run (one torch thread, quiet)."""
        c = self.config
        command = [sys.executable, "-m", TRAIN_MODULE, "--data", c.data, "--model", model, "--seed", str(c.seed)]
        command += ["--threads", "1", "--epochs", str(c.space.max_epochs), "--patience", str(c.patience)]
        command += ["--lr", lr_text(point[0]), "--lr-step", str(point[1]), "--exclude-seen", c.exclude_seen]
        command += ["--out", str(out), "--quiet"]
        if variant == "enh":
            command.append("--enhancer")
            for split, store in self.stores().items():
                command += [f"--store-{split}", str(store)]
        return command

    def stores(self) -> dict[str, Path]:
        """The enhancer's store per split: ``DATA/stores/<prefix>_<split>.safetensors``."""
        folder = Path(self.config.data) / "stores"
        return {
            split: folder / f"{self.config.store_prefix}_{split}.safetensors" for split in ("train", "valid", "test")
        }

    def read(self, path: Path, model: str, variant: str, point: tuple[float, int]) -> RunSummary:
        """A run's summary, after checking that it ran what this search asks for (else a one-line error)."""
        try:
            run = json.loads(path.read_text(encoding="utf-8"))
            config = run["config"]
            wanted: dict[str, Any] = {"model": model, "enhancer": variant == "enh"}
            got: dict[str, Any] = {"model": run["model"], "enhancer": run["enhancer"]}
            c = self.config
            wanted.update(lr_step=point[1], epochs=c.space.max_epochs, patience=c.patience, seed=c.seed)
            wanted.update(exclude_seen=c.exclude_seen)
            got.update({k: config.get(k) for k in ("lr_step", "epochs", "patience", "seed", "exclude_seen")})
            if variant == "enh":  # the names do not say which stores: the train store's file name does
                wanted["train store"] = self.stores()["train"].name
                got["train store"] = Path((run.get("stores") or {}).get("train", "")).name or None
            value = float(run["valid_at_best"][METRIC])
            summary = RunSummary(
                path.name, value, int(run["best_epoch"]), run.get("prefix_items_last"), run.get("epochs_run")
            )
            lr = float(config["lr"])
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{path}: not a run's JSON ({err})") from None
        except (KeyError, TypeError) as err:
            raise ValueError(f"{path}: not a train result (missing {err})") from None
        if not same_point((lr, point[1]), point):
            got["lr"], wanted["lr"] = lr, point[0]
        for key in wanted:
            if got.get(key) != wanted[key]:
                raise ValueError(
                    f"{path}: {key} is {got.get(key)!r}, this search runs {wanted[key]!r}: "
                    f"move the file away or choose another {flag_or_name('out', '--out')}"
                )
        return summary
