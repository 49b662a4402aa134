"""Choosing a backbone's learning-rate schedule on validation: a coordinate search over (lr, lr_step) whose
lists widen at their ends.

    python -m llm4sbr_adapter.experiments.training.schedule_search --data DIR --out TUNE_DIR \\
        --models srgnn narm stamp --variants alone enh --lrs 5e-4 1e-3 2e-3 --steps 3 6 12 --jobs 2

The search (:func:`search_schedule`) is the baselines' (``baselines/search.py``): from the start point, one
setting at a time (lr, then step) moves to the best value of its list with the other held, a strict gain
needed (ties keep the current point, then the earlier value); passes repeat until one changes nothing (at
most ``max_passes``). Each point is evaluated once, and the new points of one list go to ``evaluate`` in
one call, so a caller can run them at once. When the best value of a list is its smallest or largest, the
list grows one value beyond it (lr halved / doubled, step halved (>= 1) / doubled) and is searched again,
at most ``max_extensions`` times per end. Two ends are limits, not edges: step 1 (decay every epoch) and a
step >= ``max_epochs`` (no decay within a run; the doubled step is capped there, so the list never grows
past it). A chosen value still at an end of what was tried is noted.

The command evaluates a point by running :mod:`.train` (validation MRR@20 at the run's best epoch), one
torch thread a run and ``--jobs`` runs at once shared by every (model, variant) search; a run's JSON
``TUNE_DIR/<model>[_enh]_lr<lr>_step<step>.json`` that exists is read instead (so a killed search resumes).
Per search it writes ``TUNE_DIR/<model>_<variant>.search.json`` and prints one tab-separated line:
``model variant lr step details note``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import ClassVar, Literal

from llm4sbr_adapter.atomic_files import atomic_write_text
from llm4sbr_adapter.config import ConfigBase, setting
from llm4sbr_adapter.config_cli import add_config_arguments, config_from_args, hint_flags
from llm4sbr_adapter.errors import CliParser, add_log_level, flag_or_name, run_cli
from llm4sbr_adapter.output_paths import check_output_folder, check_writes

from ..data.prepared_files import data_inputs
from ..models.backbones import BACKBONES
from .schedule_runs import Launch, RunCancelled, TrainRuns, lr_text

__all__ = [
    "Point",
    "ScheduleSearch",
    "ScheduleSearchConfig",
    "ScheduleSpace",
    "edge_notes",
    "main",
    "run_searches",
    "search_schedule",
]

Point = tuple[float, int]  # (learning rate, decay step)
Evaluate = Callable[[Sequence[Point]], Sequence[float]]
VARIANTS = ("alone", "enh")


@dataclasses.dataclass
class ScheduleSpace(ConfigBase):
    """Where the search starts, the values it tries first, and how far it may go."""

    FORMAT: ClassVar[str] = "llm4sbr_schedule_space"

    lrs: tuple[float, ...] = setting((5e-4, 1e-3, 2e-3), "learning rates tried first", metavar="LR")
    steps: tuple[int, ...] = setting((3, 6, 12), "decay steps (epochs) tried first", metavar="STEP")
    start_lr: float = setting(1e-3, "learning rate of the start point", minimum=0.0, exclusive_minimum=True)
    start_step: int = setting(6, "decay step of the start point", minimum=1)
    max_epochs: int = setting(30, "epochs a run may train at most; a step >= it means no decay", minimum=1)
    max_extensions: int = setting(2, "times each end of a list may grow beyond what was given", minimum=0)
    max_passes: int = setting(3, "coordinate passes at most", minimum=1)

    def validate(self) -> None:
        if not self.lrs or min(self.lrs) <= 0 or not all(math.isfinite(v) for v in self.lrs):
            self.fail("lrs", f"must be one or more positive numbers, got {list(self.lrs)}")
        if not self.steps or min(self.steps) < 1:
            self.fail("steps", f"must be one or more whole numbers >= 1, got {list(self.steps)}")


def _lr(value: float) -> float:
    """A learning rate as its file-name spelling reads back (what a run records in ``config.lr``)."""
    return float(lr_text(value))


def _widen(name: str, values: list, side: str, space: ScheduleSpace) -> float | int | None:
    """The value one step beyond the ``side`` ("low"/"high") end of ``values``; ``None`` at a limit."""
    end = values[0] if side == "low" else values[-1]
    if name == "lr":
        return _lr(end / 2 if side == "low" else end * 2)
    if side == "low":
        return None if end <= 1 else max(1, end // 2)
    return None if end >= space.max_epochs else min(end * 2, space.max_epochs)


@dataclasses.dataclass
class ScheduleSearch:
    """The outcome of :func:`search_schedule`: every evaluated point with its value (evaluation order), the
    calls to ``evaluate`` (``batches``), the chosen point, the values tried per setting, the passes made and
    a note per chosen value still at an end of what was tried."""

    points: dict[Point, float]
    batches: list[list[Point]]
    chosen: Point
    value: float
    lrs: list[float]
    steps: list[int]
    passes: int
    widened: dict[str, int]
    notes: list[str]


class _Memo:
    """Each point's value, evaluated once; the new points of one request go to ``evaluate`` together."""

    def __init__(self, evaluate: Evaluate) -> None:
        self.evaluate = evaluate
        self.points: dict[Point, float] = {}
        self.batches: list[list[Point]] = []

    def values(self, points: Sequence[Point]) -> list[float]:
        new = [p for p in dict.fromkeys(points) if p not in self.points]
        if new:
            got = list(self.evaluate(new))
            if len(got) != len(new):
                raise ValueError(f"evaluate returned {len(got)} values for {len(new)} points")
            for (lr, step), value in zip(new, got, strict=True):
                if not math.isfinite(value):
                    raise ValueError(f"evaluate returned {value} for lr {lr_text(lr)} step {step}")
                self.points[(lr, step)] = float(value)
            self.batches.append(new)
        return [self.points[p] for p in points]


def search_schedule(evaluate: Evaluate, space: ScheduleSpace) -> ScheduleSearch:
    """Coordinate search over (lr, step) from ``space``'s start (module docstring); ``evaluate`` maps a list
    of points to their validation values (higher is better)."""
    memo = _Memo(evaluate)
    axes: dict[str, list] = {
        "lr": sorted({_lr(v) for v in (*space.lrs, space.start_lr)}),
        "step": sorted({*space.steps, space.start_step}),
    }
    widened = {f"{name} {side}": 0 for name in axes for side in ("low", "high")}
    current: Point = (_lr(space.start_lr), space.start_step)
    passes, changed = 0, True
    while changed and passes < space.max_passes:
        passes, changed = passes + 1, False
        for index in range(len(axes)):
            current, moved = _search_axis(memo, axes, widened, current, index, space)
            changed = changed or moved
    notes = edge_notes(current, axes["lr"], axes["step"], space.max_epochs)
    return ScheduleSearch(
        memo.points, memo.batches, current, memo.points[current], axes["lr"], axes["step"], passes, widened, notes
    )


def _search_axis(
    memo: _Memo, axes: dict[str, list], widened: dict[str, int], current: Point, index: int, space: ScheduleSpace
) -> tuple[Point, bool]:
    """Move setting ``index`` of ``current`` to the best value of its list (strict gain), widening the list
    while the best is at an end that may grow; returns the new point and whether it moved."""
    name = ("lr", "step")[index]
    changed = False
    while True:
        candidates = [(v, current[1]) if index == 0 else (current[0], v) for v in axes[name]]
        values_now = memo.values(candidates)  # ``current`` is one of them: its value is in the list
        best = memo.points[current]
        for point, value in zip(candidates, values_now, strict=True):
            if value > best:
                current, best, changed = point, value, True
        values = axes[name]
        ends = [side for side, end in (("low", values[0]), ("high", values[-1])) if current[index] == end]
        growing = [(side, _widen(name, values, side, space)) for side in ends]
        growing = [
            (side, new) for side, new in growing if new is not None and widened[f"{name} {side}"] < space.max_extensions
        ]
        if not growing:  # inside the list, or at an end that is a limit or has grown its most
            return current, changed
        side, new = growing[0]
        widened[f"{name} {side}"] += 1
        axes[name] = sorted({*values, new})


def edge_notes(chosen: Point, lrs: Sequence[float], steps: Sequence[int], max_epochs: int) -> list[str]:
    """``["lr 4e-3 is the largest tried", ...]``: the chosen values at an end of the values tried (step 1 and
    a step >= ``max_epochs`` are limits, never noted)."""
    lr, step = chosen
    notes = []
    if len(lrs) == 1:
        notes.append(f"lr {lr_text(lr)} is the only one tried")
    elif lr in (lrs[0], lrs[-1]):
        notes.append(f"lr {lr_text(lr)} is the {'smallest' if lr == lrs[0] else 'largest'} tried")
    low, high = step == steps[0] and step > 1, step == steps[-1] and step < max_epochs
    if len(steps) == 1 and (low or high):
        notes.append(f"step {step} is the only one tried")
    elif low or high:
        notes.append(f"step {step} is the {'smallest' if low else 'largest'} tried")
    return notes


@dataclasses.dataclass
class ScheduleSearchConfig(ConfigBase):
    """The command's settings: the runs to search over and the search space."""

    FORMAT: ClassVar[str] = "llm4sbr_schedule_search_config"

    data: str = setting(help="prepared data folder the runs train and validate on (seed 0's)", metavar="DIR")
    out: str = setting(
        help="tuning folder: the runs' JSONs <model>[_enh]_lr<lr>_step<step>.json (existing ones are read, not "
        "rerun) and one <model>_<variant>.search.json per search",
        metavar="TUNE_DIR",
    )
    models: tuple[str, ...] = setting(
        ("srgnn",), "backbones, each searched on its own", aliases=("--model",), metavar="MODEL"
    )
    variants: tuple[str, ...] = setting(
        ("alone",), "alone (the backbone) and/or enh (+ the intent enhancer)", aliases=("--variant",), metavar="VARIANT"
    )
    store_prefix: str = setting("text_mean", "enh runs read DIR/stores/PREFIX_{train,valid,test}.safetensors")
    space: ScheduleSpace = setting(default_factory=ScheduleSpace, help="the search space")
    patience: int = setting(3, "a run stops after this many epochs without a better validation MRR@20", minimum=0)
    seed: int = setting(0, "seed of every run", minimum=0)
    exclude_seen: Literal["never", "choose"] = setting("choose", "each run's --exclude-seen (train's flag)")
    jobs: int = setting(1, "training runs at once (one torch thread each), shared by all the searches", minimum=1)

    def validate(self) -> None:
        for name, allowed in (("models", tuple(sorted(BACKBONES))), ("variants", VARIANTS)):
            values = getattr(self, name)
            bad = [v for v in values if v not in allowed]
            if not values or bad or len(set(values)) < len(values):
                self.fail(name, f"must be distinct values of {list(allowed)}, got {list(values)}")


def search_record(
    config: ScheduleSearchConfig, model: str, variant: str, result: ScheduleSearch, runs: TrainRuns
) -> dict:
    """The ``.search.json`` of one search: settings, every point, the chosen one, the notes and the line."""
    summaries = {point: runs.summaries[(model, variant, point)] for point in result.points}
    chosen = summaries[result.chosen]
    notes = list(result.notes)
    if chosen.best_epoch >= config.space.max_epochs:
        notes.append(f"best epoch {chosen.best_epoch} is the last allowed")
    better = runs.better_elsewhere(model, variant, list(result.points), chosen.value)
    if better:
        notes.append(f"off the search's path, {', '.join(better)} scored higher")
    details = f"valid MRR@20 {chosen.value:.4f}, best epoch {chosen.best_epoch}, prefix last {chosen.prefix_items_last}"
    lr, step = result.chosen
    line = "\t".join([model, variant, lr_text(lr), str(step), details, "; ".join(notes) or "inside the grid"])

    def row(point: Point) -> dict:
        return {"lr": point[0], "lr_step": point[1], **dataclasses.asdict(summaries[point])}

    return {
        "format": "llm4sbr_schedule_search",
        "model": model,
        "variant": variant,
        "stores": {k: str(v) for k, v in runs.stores().items()} if variant == "enh" else None,
        "settings": config.to_dict(),
        "points": [row(p) for p in result.points],
        "batches": [[row(p)["file"] for p in batch] for batch in result.batches],
        "lrs_tried": result.lrs,
        "steps_tried": result.steps,
        "widened": result.widened,
        "passes": result.passes,
        "chosen": row(result.chosen),
        "notes": notes,
        "line": line,
    }


def search_path(config: ScheduleSearchConfig, model: str, variant: str) -> Path:
    """``TUNE_DIR/<model>_<variant>.search.json``."""
    return Path(config.out) / f"{model}_{variant}.search.json"


def _check_paths(config: ScheduleSearchConfig, runs: TrainRuns) -> list[tuple[str, str]]:
    """The (model, variant) pairs, after checking the outputs against the inputs and that the stores exist."""
    pairs = [(m, v) for m in config.models for v in config.variants]
    out_label = flag_or_name("out", "--out")
    check_output_folder(out_label, config.out)
    Path(config.out).mkdir(parents=True, exist_ok=True)
    outputs = {f"{out_label} ({search_path(config, m, v).name})": search_path(config, m, v) for m, v in pairs}
    inputs: dict[str, Path | list[Path]] = dict(data_inputs(config.data, flag_or_name("data", "--data")))
    if "enh" in config.variants:
        stores = list(runs.stores().values())
        missing = [p for p in stores if not p.is_file()]
        if missing:
            raise FileNotFoundError(
                f"{flag_or_name('store_prefix', '--store-prefix')} {config.store_prefix}: {missing[0]} not found"
            )
        inputs[flag_or_name("store_prefix", "--store-prefix")] = stores
    check_writes(outputs, inputs)
    return pairs


def run_searches(config: ScheduleSearchConfig, launch: Launch | None = None) -> list[dict]:
    """Every (model, variant) search at once, their runs sharing ``config.jobs``; each one's record is
    written to its ``.search.json`` when it ends. Returns the records in (model, variant) order; the first
    failure (a failed run stops new ones) is raised once every search has stopped."""
    runs = TrainRuns(config) if launch is None else TrainRuns(config, launch)
    pairs = _check_paths(config, runs)

    def one(model: str, variant: str) -> dict:
        result = search_schedule(runs.evaluator(model, variant), config.space)
        record = search_record(config, model, variant, result, runs)
        atomic_write_text(search_path(config, model, variant), json.dumps(record, indent=2) + "\n")
        return record

    try:
        with ThreadPoolExecutor(max_workers=len(pairs)) as searches:
            futures = [searches.submit(one, m, v) for m, v in pairs]
    except BaseException:  # Ctrl-C while waiting: no new run starts, the ones in flight end
        runs.failed.set()
        raise
    finally:
        runs.close()
    errors = [e for f in futures if (e := f.exception()) is not None]
    errors.sort(key=lambda e: isinstance(e, RunCancelled))
    if errors:
        raise errors[0]
    return [f.result() for f in futures]


def main(argv: Sequence[str] | None = None) -> int:
    parser = CliParser(description="Choose each backbone's (lr, decay step) on validation: a coordinate search.")
    add_config_arguments(parser, ScheduleSearchConfig)
    add_log_level(parser, "warning")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(message)s", stream=sys.stderr)

    def work() -> int:
        config = config_from_args(ScheduleSearchConfig, args)
        for record in run_searches(config):
            print(record["line"], flush=True)
        return 0

    return run_cli(work, args.log_level, hint_flags(ScheduleSearchConfig))


if __name__ == "__main__":
    raise SystemExit(main())
