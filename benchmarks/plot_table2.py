"""PNG of Table 2 (paper protocol): HR@20 per model and variant, with 95 % intervals from a bootstrap
over test users, one panel per dataset. Reads the JSON of ``python -m llm4sbr_adapter.experiments.evaluation.table2 ...
--json``.

    python benchmarks/plot_table2.py --json /work/runs/paper/beauty/table2.json /work/runs/paper/ml100k/table2.json \\
        --titles "Amazon Beauty" "ML-100K" --out docs/img/paper_table2_hr20.png
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from llm4sbr_adapter.optional_deps import MissingExtraError, pyplot


def panel(ax, data: dict, metric: str, title: str) -> None:
    """Horizontal bars, one per group in table order; whiskers: the user-bootstrap interval; dots: each seed."""
    groups = list(data["groups"].values())
    labels = [g["label"] for g in groups]
    means = [100 * g["interval"][metric][0] for g in groups]
    lo = [m - 100 * g["interval"][metric][1] for m, g in zip(means, groups, strict=True)]
    hi = [100 * g["interval"][metric][2] - m for m, g in zip(means, groups, strict=True)]
    palette = {"baseline": "#999999", "alone": "#88aacc", "text-mean": "#225588", "shuffled": "#ccbb44"}
    colours = [palette.get(g.get("kind", ""), "#666666") for g in groups]
    y = list(range(len(groups)))[::-1]
    ax.barh(y, means, xerr=[lo, hi], color=colours, capsize=3)
    for yk, g in zip(y, groups, strict=True):
        ax.plot([100 * v for v in g["test"][metric]], [yk] * len(g["test"][metric]), "k.", markersize=3)
    ax.set_yticks(y, labels)
    ax.set_xlabel(f"test {metric} (%)")
    ax.set_title(title)


def main() -> int:
    p = argparse.ArgumentParser(
        description="Plot Table 2 (paper protocol) from llm4sbr_adapter.experiments.evaluation.table2 JSON files."
    )
    p.add_argument(
        "--json",
        nargs="+",
        required=True,
        help="llm4sbr_adapter.experiments.evaluation.table2 --json outputs, one per panel",
    )
    p.add_argument("--titles", nargs="+", help="panel titles (default: the JSON file names)")
    p.add_argument("--metric", default="HR@20", help="metric to plot (one of the table's difference metrics)")
    p.add_argument("--out", required=True, help="PNG path")
    args = p.parse_args()
    try:
        plt = pyplot("the Table 2 plot")
    except MissingExtraError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    titles = args.titles or [Path(j).stem for j in args.json]
    fig, axes = plt.subplots(1, len(args.json), figsize=(6.5 * len(args.json), 5.5), squeeze=False)
    for ax, path, title in zip(axes[0], args.json, titles, strict=True):
        panel(ax, json.loads(Path(path).read_text(encoding="utf-8")), args.metric, title)
    fig.suptitle(
        f"{args.metric} under the authors' protocol: mean over seeds (bars), each seed (dots), "
        "95% user-bootstrap interval",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
