"""Summarise runs of :mod:`.train` and :mod:`.baselines`: mean ± std over seeds and paired
differences with intervals from a bootstrap over users (:mod:`llm4sbr_adapter.experiments.evaluation.bootstrap`).

* Default: per (model, enhancer) the mean and sample standard deviation over seeds of every test
  metric, the chosen epochs, seconds per training epoch and peak RSS; then, for each model run both
  alone and with the enhancer, the difference (enhancer - alone) with its 95 % interval.
* ``--versus OTHER``: the same difference between two folders (e.g. real vs shuffled intents).
* ``--by-name BASELINE``: groups named by file (``all_llm_s2.json`` -> ``all_llm``) against one of them.
* ``--table2``: the paper-protocol Table 2 (:mod:`llm4sbr_adapter.experiments.evaluation.table2`).

An interval that excludes 0 (marked ``*``) supports a difference on this test data for these seeds;
one that contains 0 means "not resolved", never "the same". Per-seed differences sit beside it.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from llm4sbr_adapter import strict_json
from llm4sbr_adapter.atomic_files import atomic_write_text
from llm4sbr_adapter.errors import interruptible
from llm4sbr_adapter.output_paths import check_writes, folder_files

from .bootstrap import Difference, paired_difference
from .metrics import per_session_metrics

METRICS = ("HR@5", "MRR@5", "NDCG@5", "HR@10", "MRR@10", "NDCG@10", "HR@20", "MRR@20", "NDCG@20")


def load_runs(folder: Path) -> dict[tuple[str, bool], list[dict]]:
    groups: dict[tuple[str, bool], list[dict]] = defaultdict(list)
    for path in sorted(folder.glob("*.json")):
        if path.name == "summary.json":
            continue
        res = strict_json.loads(path.read_text(encoding="utf-8"), allow_nan=True)
        if "test" not in res or "model" not in res:
            continue
        res["_path"] = path
        groups[(res["model"], bool(res["enhancer"]))].append(res)
    for runs in groups.values():
        runs.sort(key=lambda r: r["seed"])
    return groups


def session_metrics(runs: list[dict], ks: Sequence[int]) -> dict[str, np.ndarray]:
    """Per-session metrics averaged over the runs' seeds: ``{metric: [sessions]}``."""
    arrays = []
    for r in runs:
        ranks = np.load(r["_path"].with_name(r["ranks_file"]))["test_ranks"]
        arrays.append(per_session_metrics(ranks, ks))
    return {m: np.mean([a[m] for a in arrays], axis=0) for m in arrays[0]}


def popularity_metrics(data_dir: Path, ks: Sequence[int]) -> dict[str, float]:
    """Test metrics of ranking every item by its click count in train.txt (inputs and targets)."""
    import torch

    from ..data.splits import load_split
    from .metrics import summarize_ranks, target_ranks

    train, test = load_split(data_dir / "train.txt"), load_split(data_dir / "test.txt")
    num_items = max(train.max_item, test.max_item)
    pop = np.bincount(np.concatenate([train.flat, train.targets]), minlength=num_items + 1)[1:].astype(np.float32)
    ranks = [
        target_ranks(torch.from_numpy(pop).expand(len(rows), -1), torch.from_numpy(test.targets[rows] - 1)).numpy()
        for rows in np.array_split(np.arange(len(test)), max(1, len(test) // 1000))
    ]
    return summarize_ranks(np.concatenate(ranks), ks)


def summarize(
    folder: Path, metrics: Sequence[str] = METRICS, resamples: int = 10_000, data_dir: Path | None = None
) -> dict:
    groups = load_runs(folder)
    ks = sorted({int(m.split("@")[1]) for m in metrics})
    table = {}
    if data_dir is not None:
        pop = popularity_metrics(Path(data_dir), ks)
        table["popularity (train counts)"] = {
            "model": "pop",
            "enhancer": False,
            "seeds": [],
            "mean": {m: pop[m] for m in metrics},
            "std": {m: 0.0 for m in metrics},
            "best_epochs": [],
            "seconds_per_epoch": 0.0,
            "peak_rss_mb": 0.0,
            "rss_growth_mb": 0.0,
            "test_rows": None,
        }
    for (model, enh), runs in sorted(groups.items()):
        key = f"{model}{' + enhancer' if enh else ''}"
        vals = {m: [r["test"][m] for r in runs] for m in metrics}
        table[key] = {
            "model": model,
            "enhancer": enh,
            "seeds": [r["seed"] for r in runs],
            "mean": {m: float(np.mean(v)) for m, v in vals.items()},
            "std": {m: float(np.std(v, ddof=1)) if len(v) > 1 else 0.0 for m, v in vals.items()},
            "best_epochs": [r["best_epoch"] for r in runs],
            "seconds_per_epoch": float(np.mean([r["seconds_per_epoch_train"] for r in runs])),
            "peak_rss_mb": float(np.mean([r["peak_rss_mb"] for r in runs])),
            "rss_growth_mb": float(np.mean([r["peak_rss_mb"] - r["peak_rss_mb_before_training"] for r in runs])),
            "test_rows": runs[0]["rows"]["test"],
        }
    diffs = {}
    for model in sorted({m for m, _ in groups}):
        if (model, False) in groups and (model, True) in groups:
            diffs[model] = {
                m: vars(paired_difference(groups[(model, False)], groups[(model, True)], m, resamples)) for m in metrics
            }
    return {"runs": str(folder), "table": table, "enhancer_minus_alone": diffs, "resamples": resamples}


def compare_folders(
    folder: Path, other: Path, metrics: Sequence[str] = METRICS, resamples: int = 10_000
) -> dict[str, dict]:
    """For each (model, enhancer) group in both folders: paired bootstrap of ``folder - other``.

    Used for controls, e.g. enhancer with real intents (``folder``) against the same enhancer with
    intents shuffled across sessions (``other``); both must be evaluated on the same test split.
    """
    mine, theirs = load_runs(folder), load_runs(other)
    out = {}
    for key in sorted(set(mine) & set(theirs)):
        name = f"{key[0]}{' + enhancer' if key[1] else ''}"
        out[name] = {m: vars(paired_difference(theirs[key], mine[key], m, resamples)) for m in metrics}
    return out


def load_named_runs(folder: Path) -> dict[str, list[dict]]:
    """Runs grouped by file name without the ``_s<seed>`` suffix (``all_llm_s2.json`` -> ``all_llm``)."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for path in sorted(folder.glob("*_s[0-9]*.json")):
        res = strict_json.loads(path.read_text(encoding="utf-8"), allow_nan=True)
        if "test" not in res:
            continue
        res["_path"] = path
        groups[path.stem.rsplit("_s", 1)[0]].append(res)
    for runs in groups.values():
        runs.sort(key=lambda r: r["seed"])
    return dict(groups)


TABLE_METRICS = ("HR@10", "MRR@10", "NDCG@10", "HR@20", "MRR@20", "NDCG@20")  # default columns of the tables
NAMED_METRICS = ("HR@10", "MRR@10", "HR@20", "MRR@20", "NDCG@20")  # ... of the --by-name table


def named_markdown(folder: Path, baseline: str, metrics: Sequence[str] = NAMED_METRICS, resamples: int = 10_000) -> str:
    """Mean ± std per named group, and each group minus ``baseline`` over the seeds both have.

    The paired bootstrap uses only the seeds present in both groups, so a group with fewer finished
    seeds is compared like for like. Its interval covers test-set sampling only; the last column
    lists the HR@20 difference seed by seed, so seed-to-seed variation stays visible beside it.
    """
    groups = load_named_runs(folder)
    if baseline not in groups:
        raise ValueError(f"{folder}: no runs named {baseline}_s<seed>.json (have {sorted(groups)})")
    lines = [
        "| config | seeds | "
        + " | ".join(metrics)
        + " | s/epoch | "
        + " | ".join(f"Δ{m} vs {baseline} [95% CI]" for m in ("HR@20", "MRR@20"))
        + " | ΔHR@20 per seed |",
        "|---|---|" + "---:|" * (len(metrics) + 4),
    ]
    for name, runs in sorted(groups.items(), key=lambda kv: (kv[0] != baseline, kv[0])):
        cells = []
        for m in metrics:
            v = 100 * np.array([r["test"][m] for r in runs])
            cells.append(f"{v.mean():.2f} ± {v.std(ddof=1):.2f}" if len(v) > 1 else f"{v.mean():.2f}")
        sec = np.mean([r["seconds_per_epoch_train"] for r in runs])
        shared = {r["seed"] for r in runs} & {r["seed"] for r in groups[baseline]}
        deltas, per_seed = ["", ""], ""
        if name != baseline and shared:
            d = {m: paired_difference(groups[baseline], runs, m, resamples) for m in ("HR@20", "MRR@20")}
            deltas = [format_difference(d[m]) for m in ("HR@20", "MRR@20")]
            per_seed = format_per_seed(d["HR@20"])
        seeds = ",".join(str(r["seed"]) for r in runs)
        lines.append(
            f"| {name} | {seeds} | " + " | ".join(cells) + f" | {sec:.0f} | " + " | ".join(deltas) + f" | {per_seed} |"
        )
    lines.append("")
    lines.append(
        f"Metrics in %, mean ± sample std over seeds (the mean alone for one seed); Δ = paired difference "
        f"over the seeds shared with {baseline}, 95% interval from a bootstrap over test users "
        f"({resamples} resamples); * = interval excludes 0; "
        f"per seed: test HR@20 minus {baseline}'s at the same seed."
    )
    return "\n".join(lines)


def format_difference(d: Difference) -> str:
    """``+1.23 [+0.45, +2.01] *`` in percentage points; ``*`` when the interval excludes 0; ``(rows)`` when
    the test set had no user column, so rows were resampled instead of users."""
    rows = "" if d.clustered else " (rows)"  # no rows_test.tsv: rows were resampled, not users
    return f"{100 * d.diff:+.2f} [{100 * d.lo:+.2f}, {100 * d.hi:+.2f}]{rows}{' *' if d.resolved else ''}"


def format_per_seed(d: Difference) -> str:
    """Each seed's own difference in percentage points, ``+0.10 / -0.05 / +0.20``."""
    return " / ".join(f"{100 * v:+.2f}" for _, v in sorted(d.per_seed.items()))


def diff_markdown(diffs: dict, title: str, metrics: Sequence[str] = TABLE_METRICS) -> str:
    lines = [f"| {title} | " + " | ".join(f"Δ{m} [95% CI]" for m in metrics) + " |", "|---|" + "---:|" * len(metrics)]
    for model, d in diffs.items():
        cells = []
        for m in metrics:
            cells.append(format_difference(Difference(**d[m])))
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def to_markdown(summary: dict, metrics: Sequence[str] = TABLE_METRICS) -> str:
    lines = [
        "| model | seeds | " + " | ".join(metrics) + " | best epochs | s/epoch | peak RSS MiB (growth) |",
        "|---|---|" + "---:|" * len(metrics) + "---|---:|---:|",
    ]
    for key, row in summary["table"].items():
        one = len(row["seeds"]) <= 1  # one seed (or the seedless popularity row) has no spread to show
        cells = [f"{100 * row['mean'][m]:.2f}" + ("" if one else f" ± {100 * row['std'][m]:.2f}") for m in metrics]
        lines.append(
            f"| {key} | {len(row['seeds'])} | "
            + " | ".join(cells)
            + f" | {','.join(map(str, row['best_epochs']))} | {row['seconds_per_epoch']:.1f}"
            + f" | {row['peak_rss_mb']:.0f} ({row['rss_growth_mb']:+.0f}) |"
        )
    lines.append("")
    lines.append("Metrics in %, mean ± sample std over seeds (the mean alone for one seed).")
    if summary["enhancer_minus_alone"]:
        lines += ["", diff_markdown(summary["enhancer_minus_alone"], "model", metrics)]
        lines.append("")
        lines.append(
            f"Enhancer minus alone, in percentage points, mean over seeds; 95% interval from a bootstrap over "
            f"test users ({summary['resamples']} resamples); * = interval excludes 0, otherwise not resolved."
        )
    return "\n".join(lines)


def parse_metrics(spec: str, parser: argparse.ArgumentParser) -> tuple[str, ...]:
    """``"all"`` or ``"HR@20,MRR@20"`` -> metric names, in :data:`METRICS` order; unknown names are a CLI error."""
    if spec.strip().lower() == "all":
        return METRICS
    wanted = [m.strip() for m in spec.split(",") if m.strip()]
    unknown = [m for m in wanted if m not in METRICS]
    if unknown or not wanted:
        parser.error(f"--metrics: unknown metric(s) {unknown or spec!r}; choose from {', '.join(METRICS)} or 'all'")
    return tuple(m for m in METRICS if m in wanted)


@interruptible
def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description="Summarise llm4sbr_adapter.experiments.training.train result JSONs: mean ± std over seeds, "
        "paired bootstrap CIs for enhancer - alone."
    )
    p.add_argument("--runs", required=True, help="folder with the result JSON and .ranks.npz files")
    p.add_argument("--resamples", type=int, default=10_000, help="bootstrap resamples")
    p.add_argument("--json", help="also write the summary as JSON here")
    p.add_argument("--data", help="prepared data folder: adds a popularity reference row (train click counts)")
    p.add_argument(
        "--versus",
        help="another runs folder (same test split): also print paired bootstrap CIs of "
        "this folder minus that one for every (model, enhancer) group present in both",
    )
    p.add_argument(
        "--by-name",
        metavar="BASELINE",
        help="instead: group runs by file name without _s<seed> (e.g. HIPHOP configurations) and "
        "compare every group with the group named BASELINE",
    )
    p.add_argument(
        "--metrics",
        metavar="LIST",
        help="metric columns of the tables: 'all' (HR, MRR, NDCG at 5, 10, 20) or a comma-separated "
        f"subset of {', '.join(METRICS)}; default: HR@10, MRR@10, HR@20, MRR@20, NDCG@20 with "
        "--by-name, HR/MRR/NDCG at 10 and 20 otherwise",
    )
    args = p.parse_args(argv)
    metrics = parse_metrics(args.metrics, p) if args.metrics else None
    try:
        inputs = {flag: folder_files(getattr(args, flag[2:])) for flag in ("--runs", "--data", "--versus")}
        check_writes({"--json": args.json}, inputs)
    except ValueError as err:
        p.error(str(err))
    if args.by_name:
        print(named_markdown(Path(args.runs), args.by_name, metrics=metrics or NAMED_METRICS, resamples=args.resamples))
        return 0
    if args.versus:
        diffs = compare_folders(Path(args.runs), Path(args.versus), resamples=args.resamples)
        print(diff_markdown(diffs, f"{Path(args.runs).name} − {Path(args.versus).name}", metrics or TABLE_METRICS))
        print()
    summary = summarize(Path(args.runs), resamples=args.resamples, data_dir=Path(args.data) if args.data else None)
    print(to_markdown(summary, metrics or TABLE_METRICS))
    if args.json:
        atomic_write_text(args.json, json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
