"""PNG figures of the reproduction runs: Table 2 as bars, the perspective ablation (paper's Figure 4)
and the top-f sweep (Figure 5). Bars and points are the mean over seeds, whiskers the sample std.

It reads the run folders that benchmarks/repro_table2.py and benchmarks/run_llm_experiments.sh write
under DATA_DIR (``results``: alone + text-mean enhancer; ``results_llm``: LLM enhancer;
``results_llm_long_only`` / ``results_llm_short_only``; ``results_llm_f{0,1,3}``); a missing folder
leaves its bars out.

Example:
    python benchmarks/plot_reproduction.py --data /work/runs/ml100k --out docs/img --name ml100k
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from llm4sbr_adapter.experiments.evaluation.summarize import load_runs  # noqa: E402
from llm4sbr_adapter.optional_deps import MissingExtraError, pyplot  # noqa: E402

MODELS = ("srgnn", "narm", "stamp")
LABELS = {"srgnn": "SR-GNN", "narm": "NARM", "stamp": "STAMP"}


def stat(folder: Path, model: str, enhancer: bool, metric: str) -> tuple[float, float, int] | None:
    """(mean, std, seeds) of a test metric in %, or None when the folder has no such runs."""
    if not folder.is_dir():
        return None
    runs = load_runs(folder).get((model, enhancer))
    if not runs:
        return None
    vals = 100 * np.array([r["test"][metric] for r in runs])
    return float(vals.mean()), float(vals.std(ddof=1)) if len(vals) > 1 else 0.0, len(vals)


def bars(ax, groups: list[str], series: dict[str, list], title: str, ylabel: str) -> None:
    width = 0.8 / max(1, len(series))
    x = np.arange(len(groups))
    for j, (name, vals) in enumerate(series.items()):
        means = [v[0] if v else np.nan for v in vals]
        stds = [v[1] if v else 0.0 for v in vals]
        ax.bar(x + (j - (len(series) - 1) / 2) * width, means, width, yerr=stds, capsize=3, label=name)
    ax.set_xticks(x, groups)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="prepared data folder holding the results* run folders")
    p.add_argument("--out", default="docs/img", help="folder for the PNG files (default docs/img)")
    p.add_argument("--name", default="ml100k", help="dataset name used in file names and titles")
    p.add_argument("--metrics", nargs="+", default=["HR@20", "MRR@20"], help="metrics to plot")
    args = p.parse_args(argv)

    try:
        plt = pyplot("the reproduction plots")
    except MissingExtraError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    data, out = Path(args.data), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written = []

    # Table 2: alone vs text-mean control vs LLM intents, per backbone
    fig, axes = plt.subplots(1, len(args.metrics), figsize=(5 * len(args.metrics), 3.6))
    for ax, metric in zip(np.atleast_1d(axes), args.metrics, strict=True):
        series = {
            "alone": [stat(data / "results", m, False, metric) for m in MODELS],
            "+ enhancer, text-mean intents (no LLM)": [stat(data / "results", m, True, metric) for m in MODELS],
            "+ enhancer, LLM intents": [stat(data / "results_llm", m, True, metric) for m in MODELS],
        }
        bars(ax, [LABELS[m] for m in MODELS], series, f"{args.name}: test {metric}", f"{metric} (%)")
    fig.tight_layout()
    path = out / f"{args.name}_table2.png"
    fig.savefig(path, dpi=120)
    written.append(path)

    # Figure 4: perspectives (SR-GNN)
    folders = {
        "none (alone)": ("results", False),
        "short only": ("results_llm_short_only", True),
        "long only": ("results_llm_long_only", True),
        "long + short": ("results_llm", True),
    }
    if any((data / f).is_dir() for f, _ in folders.values() if f != "results"):
        fig, axes = plt.subplots(1, len(args.metrics), figsize=(4.5 * len(args.metrics), 3.4))
        for ax, metric in zip(np.atleast_1d(axes), args.metrics, strict=True):
            vals = [stat(data / f, "srgnn", enh, metric) for f, enh in folders.values()]
            bars(ax, list(folders), {"SR-GNN": vals}, f"{args.name}: perspectives, test {metric}", f"{metric} (%)")
        fig.tight_layout()
        path = out / f"{args.name}_perspectives.png"
        fig.savefig(path, dpi=120)
        written.append(path)

    # Figure 5: top-f (SR-GNN)
    tops = {0: "results_llm_f0", 1: "results_llm_f1", 3: "results_llm_f3", 5: "results_llm"}
    if any((data / f).is_dir() for f in tops.values()):
        fig, axes = plt.subplots(1, len(args.metrics), figsize=(4.5 * len(args.metrics), 3.4))
        for ax, metric in zip(np.atleast_1d(axes), args.metrics, strict=True):
            pts = [(f, stat(data / folder, "srgnn", True, metric)) for f, folder in tops.items()]
            pts = [(f, v) for f, v in pts if v]
            if pts:
                ax.errorbar(
                    [f for f, _ in pts],
                    [v[0] for _, v in pts],
                    yerr=[v[1] for _, v in pts],
                    marker="o",
                    capsize=3,
                    label="SR-GNN + LLM intents",
                )
            alone = stat(data / "results", "srgnn", False, metric)
            if alone:
                ax.axhline(alone[0], color="grey", linestyle="--", label="SR-GNN alone")
            ax.set_xticks(list(tops))
            ax.set_xlabel("top-f (0 = raw answer embedding)")
            ax.set_ylabel(f"{metric} (%)")
            ax.set_title(f"{args.name}: top-f, test {metric}")
            ax.legend(fontsize=8)
        fig.tight_layout()
        path = out / f"{args.name}_top_f.png"
        fig.savefig(path, dpi=120)
        written.append(path)

    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
