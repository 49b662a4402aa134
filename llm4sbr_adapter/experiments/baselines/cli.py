"""``python -m llm4sbr_adapter.experiments.baselines``: every simple baseline, chosen on validation, tested once.

Per model the command writes ``<runs>/<model><suffix>.json`` and ``<same stem>.ranks.npz`` in the shape of
:mod:`llm4sbr_adapter.experiments.train`'s results (readable by ``summarize`` and ``table2``); a model whose
JSON exists is skipped unless ``--force``. Its flags are generated from :class:`BaselinesConfig`::

    python -m llm4sbr_adapter.experiments.baselines --data DIR --runs OUTDIR [--models sr sknn vsknn stan vstan]
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import torch

from llm4sbr_adapter.atomic_files import atomic_write_text
from llm4sbr_adapter.config import ConfigBase, ConfigError, setting
from llm4sbr_adapter.config_cli import add_config_arguments, config_from_args
from llm4sbr_adapter.errors import CliParser, interruptible
from llm4sbr_adapter.output_paths import check_writes, folder_outputs

from ..data.catalogue import count_items
from ..data.prepared_files import data_inputs, require_rows
from ..data.splits import SplitData, load_split
from ..evaluation.metrics import summarize_ranks
from ..training.loop import atomic_savez, peak_rss_mb, select_metric_problem
from .search import MODELS, SPACES, Choice, Queries, evaluate_ranks, on_edge, select_on_valid
from .sessions import kept_rows, prefix_times, read_rows

SPLITS = ("train", "valid", "test")


@dataclass
class BaselinesConfig(ConfigBase):
    """Settings of one baselines command (each field is a flag of ``python -m ...experiments.baselines``)."""

    FORMAT: ClassVar[str] = "llm4sbr-baselines-run"

    data: str = setting(help="folder with train.txt, valid.txt, test.txt (items.tsv, rows_*.tsv)")
    runs: str = setting(help="output folder for <model><suffix>.json and .ranks.npz")
    models: tuple[str, ...] = setting(default_factory=lambda: tuple(MODELS), help=f"models to run, of {list(MODELS)}")
    seed: int = setting(0, "recorded in the results (the baselines are deterministic)")
    name_suffix: str | None = setting(
        None, "file name suffix (default _s<seed>, as llm4sbr_adapter.experiments.summarize --by-name expects)"
    )
    topk: tuple[int, ...] = setting((5, 10, 20), "cut-offs K for HR/MRR/NDCG")
    select_metric: str = setting("MRR@20", "validation metric that picks the hyperparameters")
    batch_size: int = setting(256, "prefixes scored at once (one sparse score block)", minimum=1)
    threads: int = setting(1, "torch CPU threads (for the rank computation)", minimum=1)
    exclude_seen: Literal["choose", "never"] = setting(
        "choose",
        "choose: try ranking the prefix's own items last at every point, validation decides; "
        "never: keep them, like the neural models by default (a like-for-like comparison)",
    )
    force: bool = setting(False, "recompute models whose result JSON already exists")

    def validate(self) -> None:
        """Known model names, positive cut-offs, a selection metric among them."""
        unknown = [m for m in self.models if m not in MODELS]
        if unknown or not self.models:
            self.fail("models", f"must name one or more of {list(MODELS)}, got {list(self.models)}")
        if not self.topk or min(self.topk) < 1:
            self.fail("topk", f"must be one or more positive cut-offs, got {list(self.topk)}")
        problem = select_metric_problem(self.select_metric, sorted(set(self.topk)))
        if problem is not None:
            self.fail("select_metric", problem.replace("K in", f"K in {self.ref('topk')}"))

    @property
    def suffix(self) -> str:
        """The result file name suffix."""
        return f"_s{self.seed}" if self.name_suffix is None else self.name_suffix


@dataclass
class BaselineData:
    """The three splits, the training sessions with their times, the prefixes' times and the catalogue size."""

    splits: dict[str, SplitData]
    sessions: list[np.ndarray]
    session_times: np.ndarray | None
    queries: dict[str, Queries]
    num_items: int


def load_data(data_dir: Path) -> BaselineData:
    """Read a prepared folder; prefixes of one user are merged via ``rows_train.tsv`` (:mod:`.sessions`)."""
    splits = {split: load_split(data_dir / f"{split}.txt") for split in SPLITS}
    require_rows(data_dir, splits)
    num_items = count_items(data_dir, list(splits.values()))
    infos = {split: read_rows(data_dir, split) for split in SPLITS}
    for split, info in infos.items():
        if info is not None and len(info.users) != len(splits[split]):
            raise ValueError(
                f"{data_dir / f'rows_{split}.tsv'} has {len(info.users)} rows but {split}.txt has {len(splits[split])}"
            )
    train = infos["train"]
    keep = kept_rows(splits["train"], None if train is None else train.users)
    flat, offsets, targets = splits["train"].flat, splits["train"].offsets, splits["train"].targets
    sessions = [np.append(flat[offsets[r] : offsets[r + 1]], targets[r]) for r in keep]
    times = None if train is None or train.times is None else train.times[keep]
    queries = {split: Queries(splits[split], prefix_times(infos, split)) for split in ("valid", "test")}
    return BaselineData(splits, sessions, times, queries, num_items)


def _run_settings(
    name: str, choice: Choice, exclusions: tuple[bool, ...], data: BaselineData, config: BaselinesConfig, ks: list[int]
) -> dict:
    """The chosen hyperparameters, the search they came from and the run's settings (the result's "config")."""
    return {
        "params": choice.model.settings(),
        "search_start": SPACES[name].start,
        "search_values": SPACES[name].values,
        "on_edge": on_edge(SPACES[name], choice.model.params),
        "exclude_seen": list(exclusions),
        "training_sessions": len(data.sessions),
        "session_times": data.session_times is not None,
        "topk": ks,
        "select_metric": config.select_metric,
        "batch_size": config.batch_size,
    }


def run_model(name: str, data: BaselineData, config: BaselinesConfig) -> tuple[dict, dict[str, np.ndarray]]:
    """Select ``name``'s hyperparameters on valid, test once: ``(result dict, arrays for the .ranks.npz)``."""
    ks = sorted(set(config.topk))
    rss_before = peak_rss_mb()
    t0 = time.perf_counter()
    exclusions = (False, True) if config.exclude_seen == "choose" else (False,)
    choice: Choice = select_on_valid(
        name,
        SPACES[name],
        data.sessions,
        data.queries["valid"],
        data.num_items,
        ks,
        config.select_metric,
        times=data.session_times,
        batch_size=config.batch_size,
        exclusions=exclusions,
    )
    grid_seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    test_ranks = evaluate_ranks(choice.model, data.queries["test"], config.batch_size)
    chosen = choice.log[choice.best]
    result = {
        "model": name,
        "enhancer": False,
        "seed": config.seed,
        "data": str(Path(config.data).resolve()),
        "rows": {split: len(d) for split, d in data.splits.items()},
        "num_items": data.num_items,
        "config": _run_settings(name, choice, exclusions, data, config, ks),
        "best_epoch": 0,
        "select_metric": config.select_metric,
        "valid_at_best": summarize_ranks(choice.valid_ranks, ks),
        "test": summarize_ranks(test_ranks, ks),
        "epochs_run": 0,
        "seconds_per_epoch_train": chosen["fit_seconds"],
        "seconds_per_epoch_valid": chosen["valid_seconds_both"],
        "seconds_test": time.perf_counter() - t1,
        "seconds_grid": grid_seconds,
        "peak_rss_mb_before_training": rss_before,
        "peak_rss_mb": peak_rss_mb(),
        "valid_grid": choice.log,
        "log": [],
        "ranks_file": None,
    }
    arrays = {
        "test_ranks": test_ranks.astype(np.int64),
        "valid_ranks": choice.valid_ranks.astype(np.int64),
        "test_targets": data.splits["test"].targets,
    }
    return result, arrays


def write_result(result: dict, arrays: dict[str, np.ndarray], out: Path) -> None:
    """Write ``<stem>.ranks.npz`` and then ``out`` (JSON, naming the npz), both atomically."""
    ranks_path = out.with_name(out.stem + ".ranks.npz")
    atomic_savez(ranks_path, **arrays)
    result["ranks_file"] = ranks_path.name
    atomic_write_text(out, json.dumps(result, indent=2) + "\n")


def parse_args(argv: Sequence[str] | None = None) -> BaselinesConfig:
    """The :class:`BaselinesConfig` of the command line (a bad value is a one-line usage error naming the flag)."""
    p = CliParser(
        prog="python -m llm4sbr_adapter.experiments.baselines",
        description="Popularity, Markov, SR, SKNN, V-SKNN, STAN and V-STAN: hyperparameters chosen on valid, "
        "test once, results in llm4sbr_adapter.experiments.train's format.",
    )
    add_config_arguments(p, BaselinesConfig)
    args = p.parse_args(argv)
    try:
        return config_from_args(BaselinesConfig, args)
    except ConfigError as err:
        p.error(str(err))


def summary_line(name: str, result: dict, out: Path) -> str:
    """One line per model: chosen settings, validation and test metrics, and any setting on its grid's edge."""
    test, metric = result["test"], result["select_metric"]
    edges = result["config"]["on_edge"]
    edge_note = f"; ON THE EDGE of its grid: {', '.join(edges)}" if edges else ""
    return (
        f"{name} {result['config']['params']}: valid {metric} {result['valid_at_best'][metric]:.4f}; "
        f"test HR@20 {test.get('HR@20', float('nan')):.4f} MRR@20 {test.get('MRR@20', float('nan')):.4f}; "
        f"{len(result['valid_grid'])} points in {result['seconds_grid']:.1f}s{edge_note} -> {out}"
    )


def run(config: BaselinesConfig) -> list[dict]:
    """Run every requested model not yet done; returns the new results."""
    names = [f"{name}{config.suffix}{ext}" for name in dict.fromkeys(config.models) for ext in (".json", ".ranks.npz")]
    check_writes(folder_outputs("--runs", config.runs, names), data_inputs(config.data))
    torch.set_num_threads(config.threads)
    data = load_data(Path(config.data))
    done = []
    for name in dict.fromkeys(config.models):
        out = Path(config.runs) / f"{name}{config.suffix}.json"
        if out.exists() and not config.force:
            print(f"{name}: {out} exists, skipped (--force recomputes)")
            continue
        result, arrays = run_model(name, data, config)
        write_result(result, arrays, out)
        print(summary_line(name, result, out), flush=True)
        done.append(result)
    return done


@interruptible
def main(argv: Sequence[str] | None = None) -> int:
    config = parse_args(argv)
    try:
        run(config)
    except (OSError, ValueError) as err:
        print("error: " + " ".join(str(err).split()), file=sys.stderr)
        return 2
    return 0
