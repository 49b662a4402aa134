"""Table 2 of the reproduction: the simple baselines and each backbone alone / + text-mean store /
+ shuffled text-mean store (and, where they ran, + LLM store / + shuffled LLM store and the LLM
zero-shot ranking), with paired differences and intervals from a bootstrap over users.

Group names: ``<model>``, ``<model>_enh`` (text-mean), ``<model>_shuf``, ``<model>_llm``, ``<model>_llmshuf``,
the baselines' names and ``llm_zeroshot[_ownlast]`` (``intent_quality --runs``).

Reads ``<results>/<name>_s<seed>.json`` (``llm4sbr_adapter.experiments.training.train`` via benchmarks/repro_table2.py,
and
:mod:`.baselines`) and ``<shuffled>/<model>_enh_s<seed>.json``. The best simple baseline is the one
with the highest mean *validation* score (its ``select_metric``), never chosen on test.

    python -m llm4sbr_adapter.experiments.evaluation.table2 --results /work/runs/paper/beauty/results \
        --shuffled /work/runs/paper/beauty/shuffled
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from llm4sbr_adapter.atomic_files import atomic_write_text
from llm4sbr_adapter.errors import interruptible
from llm4sbr_adapter.output_paths import check_writes, folder_files

from .bootstrap import Difference, metric_interval, paired_difference
from .summarize import METRICS, format_difference, format_per_seed, load_named_runs

BASELINES = {
    "pop": "popularity",
    "markov": "item transitions",
    "sr": "sequential rules (SR)",
    "sknn": "SKNN",
    "vsknn": "V-SKNN",
    "stan": "STAN",
    "vstan": "V-STAN",
}
EDGE_MARK = " ‡"  # a baseline whose chosen setting sits on an edge of its search list (the run's config.on_edge)
BACKBONES = {"srgnn": "SR-GNN", "narm": "NARM", "stamp": "STAMP"}
VARIANTS = {
    "": "",
    "_enh": " + text-mean",
    "_shuf": " + shuffled text-mean",
    "_llm": " + LLM",
    "_llmshuf": " + shuffled LLM",
}
# Rankers that are neither a baseline nor a backbone: an intent store's ranking written by
# ``intent_quality --runs`` (:mod:`.zero_shot_run`).
ZERO_SHOT = {"llm_zeroshot": "LLM zero-shot (intents alone)", "llm_zeroshot_ownlast": "LLM zero-shot, own items last"}


def collect(results: Path, shuffled: Path | None) -> dict[str, list[dict]]:
    """Runs by group name; the shuffled folder's ``<model>_enh`` groups become ``<model>_shuf``."""
    groups = load_named_runs(results)
    if shuffled is not None and shuffled.is_dir():
        for name, runs in load_named_runs(shuffled).items():
            groups[name.replace("_enh", "_shuf")] = runs
    return groups


KEEP_SEEN = "_keepseen"  # baselines run with --exclude-seen never (prefix items kept, as the neural models do)


def is_baseline(name: str) -> bool:
    return name.removesuffix(KEEP_SEEN) in BASELINES


def label(name: str) -> str:
    if name in BASELINES:
        return BASELINES[name]
    if is_baseline(name):
        return BASELINES[name.removesuffix(KEEP_SEEN)] + ", prefix items kept"
    if name in ZERO_SHOT:
        return ZERO_SHOT[name]
    for suffix in ("_enh", "_shuf", "_llm", "_llmshuf"):
        if name.endswith(suffix) and name[: -len(suffix)] in BACKBONES:
            return BACKBONES[name[: -len(suffix)]] + VARIANTS[suffix]
    return BACKBONES.get(name, name)


def kind(name: str) -> str:
    """``baseline``, ``zero-shot``, ``alone``, ``text-mean``, ``shuffled``, ``llm`` or ``llm shuffled`` (for plots)."""
    if is_baseline(name):
        return "baseline"
    if name in ZERO_SHOT:
        return "zero-shot"
    kinds = {"_enh": "text-mean", "_shuf": "shuffled", "_llm": "llm", "_llmshuf": "llm shuffled"}
    return kinds.get(name[name.rfind("_") :], "alone")


def ordered_names(groups: dict[str, list[dict]]) -> list[str]:
    """Baselines first, then each backbone's variants, then anything else by name."""
    order = [b + k for k in ("", KEEP_SEEN) for b in BASELINES if b + k in groups]
    order += [m + v for m in BACKBONES for v in VARIANTS if m + v in groups]
    order += [z for z in ZERO_SHOT if z in groups]
    return order + sorted(set(groups) - set(order))


def best_baseline(groups: dict[str, list[dict]], keep_seen: bool = False) -> str | None:
    """The baseline with the highest mean validation score of its selection metric; with ``keep_seen`` only
    among those that keep the prefix's items in the ranking, as the neural models do."""
    names = [b + KEEP_SEEN for b in BASELINES] if keep_seen else [b for b in BASELINES]
    scores = {b: np.mean([r["valid_at_best"][r["select_metric"]] for r in groups[b]]) for b in names if b in groups}
    return max(scores, key=lambda b: scores[b]) if scores else None


def metrics_table(groups: dict[str, list[dict]], metrics: Sequence[str]) -> str:
    lines = [
        "| model | seeds | " + " | ".join(metrics) + " | best epochs | s/epoch |",
        "|---|---|" + "---:|" * len(metrics) + "---|---:|",
    ]
    for name in ordered_names(groups):
        runs = groups[name]
        cells = []
        for m in metrics:
            v = 100 * np.array([r["test"][m] for r in runs])
            cells.append(f"{v.mean():.2f} ± {v.std(ddof=1):.2f}" if len(v) > 1 else f"{v.mean():.2f}")
        trained = not is_baseline(name) and name not in ZERO_SHOT
        epochs = ",".join(str(r.get("best_epoch", "")) for r in runs) if trained else "–"
        sec = np.mean([r.get("seconds_per_epoch_train", 0.0) for r in runs])
        mark = EDGE_MARK if any(r.get("config", {}).get("on_edge") for r in runs) else ""
        lines.append(f"| {label(name)}{mark} | {len(runs)} | " + " | ".join(cells) + f" | {epochs} | {sec:.1f} |")
    return "\n".join(lines)


def comparisons(groups: dict[str, list[dict]], versus: Sequence[str] = ()) -> list[tuple[str, str, str]]:
    """``(title, a, b)`` pairs to report as ``b - a``; ``versus`` names more baselines to set each backbone
    against, beside the best one on validation (e.g. the best on test, as a harder check)."""
    bests = [b for b in dict.fromkeys((best_baseline(groups), best_baseline(groups, keep_seen=True))) if b]
    others = [b for b in versus if b in groups and b not in bests]
    out = []
    for m in BACKBONES:
        if m + "_enh" in groups and m in groups:
            out.append((f"{label(m + '_enh')} − {label(m)}", m, m + "_enh"))
        if m + "_enh" in groups and m + "_shuf" in groups:
            out.append((f"{label(m + '_enh')} − {label(m + '_shuf')}", m + "_shuf", m + "_enh"))
        for v in ("", "_enh", "_llm"):
            for best in bests:
                if m + v in groups:
                    out.append((f"{label(m + v)} − {label(best)} (best baseline)", best, m + v))
            out += [(f"{label(m + v)} − {label(b)}", b, m + v) for b in others if m + v in groups]
        out += _llm_comparisons(groups, m)
    for z in ZERO_SHOT:
        out += [(f"{label(z)} − {label(best)} (best baseline)", best, z) for best in bests if z in groups]
    return out


def _llm_comparisons(groups: dict[str, list[dict]], m: str) -> list[tuple[str, str, str]]:
    """``+ LLM`` against the backbone alone, ``+ text-mean`` and ``+ shuffled LLM``, where both ran."""
    llm = m + "_llm"
    return [
        (f"{label(llm)} − {label(a)}", a, llm) for a in (m, m + "_enh", m + "_llmshuf") if llm in groups and a in groups
    ]


def reading(d: Difference) -> str:
    if not d.resolved:
        return "not resolved"
    return "higher" if d.diff > 0 else "lower"


def differences(
    groups: dict[str, list[dict]], metrics: Sequence[str], resamples: int, versus: Sequence[str] = ()
) -> list[dict]:
    rows = []
    for title, a, b in comparisons(groups, versus):
        rows.append(
            {
                "comparison": title,
                "a": a,
                "b": b,
                **{m: vars(paired_difference(groups[a], groups[b], m, resamples)) for m in metrics},
            }
        )
    return rows


def differences_table(rows: list[dict], metrics: Sequence[str]) -> str:
    head = " | ".join(f"Δ{m} [95% CI] | per seed" for m in metrics)
    lines = [f"| comparison | {head} | reading ({metrics[0]}) |", "|---|" + "---:|---|" * len(metrics) + "---|"]
    for row in rows:
        diffs = {m: Difference(**row[m]) for m in metrics}
        cells = " | ".join(f"{format_difference(diffs[m])} | {format_per_seed(diffs[m])}" for m in metrics)
        lines.append(f"| {row['comparison']} | {cells} | {reading(diffs[metrics[0]])} |")
    return "\n".join(lines)


def table2(
    results: Path,
    shuffled: Path | None,
    metrics: Sequence[str] = METRICS,
    diff_metrics: Sequence[str] = ("HR@20", "MRR@20"),
    resamples: int = 10_000,
    versus: Sequence[str] = (),
) -> tuple[str, dict]:
    """The Markdown tables and their data (for JSON and plots); ``versus``: see :func:`comparisons`."""
    groups = collect(results, shuffled)
    if not groups:
        raise ValueError(f"{results}: no <name>_s<seed>.json runs")
    not_baselines = [b for b in versus if not is_baseline(b)]
    if not_baselines:
        raise ValueError(f"--versus: {', '.join(not_baselines)} is not a simple baseline's run name")
    missing = [b for b in versus if b not in groups]
    if missing:
        raise ValueError(f"--versus: no runs of {', '.join(missing)} in {results}")
    rows = differences(groups, diff_metrics, resamples, versus)
    best, best_kept = best_baseline(groups), best_baseline(groups, keep_seen=True)
    text = "\n\n".join(
        [
            metrics_table(groups, metrics),
            "Metrics in %, mean ± sample std over seeds; the seed draws the split (paper protocol: the validation "
            "users, and on Beauty the test users too) and the initialisation. Baselines: hyperparameters chosen on "
            'validation (no epochs); "prefix items kept": the prefix\'s own items stay in the ranking, as for the '
            "neural models; ‡ = a chosen setting is the smallest or largest value its search tried, in at least one "
            "seed (listed in the run's config.on_edge).",
            differences_table(rows, diff_metrics),
            f"b − a in percentage points, mean over seeds; 95% interval from a bootstrap over test users "
            f"({resamples} resamples; seeds that share a test set resampled together, others each on its own); "
            f"* = the interval excludes 0, otherwise not resolved. Best baseline on validation: "
            f"{label(best) if best else '–'}; among those that keep the prefix's items: "
            f"{label(best_kept) if best_kept else '–'}.",
        ]
    )
    data = {
        "results": str(results),
        "shuffled": str(shuffled) if shuffled else None,
        "best_baseline": best,
        "best_baseline_keeping_prefix_items": best_kept,
        "groups": {
            n: {
                "label": label(n),
                "kind": kind(n),
                "seeds": [r["seed"] for r in groups[n]],
                "test": {m: [r["test"][m] for r in groups[n]] for m in metrics},
                "interval": {m: metric_interval(groups[n], m, resamples) for m in diff_metrics},
            }
            for n in ordered_names(groups)
        },
        "differences": rows,
        "resamples": resamples,
    }
    return text, data


def sensitivity_table(results: Path, other: Path, metrics: Sequence[str] = ("HR@20", "MRR@20")) -> str:
    """Groups present in both folders, each seed's test metric in ``results`` and in ``other`` (another
    preparation of the same users, e.g. same-day ties shuffled) and the mean change. The rows differ
    between the two preparations, so there is no row pairing; the per-seed changes show the spread."""
    mine, theirs = load_named_runs(results), load_named_runs(other)
    head = " | ".join(f"{m} as prepared | {m} other | Δ{m} per seed | mean Δ{m}" for m in metrics)
    lines = [f"| model | seeds | {head} |", "|---|---|" + "---:|---:|---:|---:|" * len(metrics)]
    for name in ordered_names({n: r for n, r in mine.items() if n in theirs}):
        a, b = {r["seed"]: r for r in mine[name]}, {r["seed"]: r for r in theirs[name]}
        seeds = sorted(set(a) & set(b))
        cells = []
        for m in metrics:
            va = np.array([100 * a[sd]["test"][m] for sd in seeds])
            vb = np.array([100 * b[sd]["test"][m] for sd in seeds])
            per = " / ".join(f"{d:+.2f}" for d in vb - va)
            cells.append(f"{va.mean():.2f} | {vb.mean():.2f} | {per} | {(vb - va).mean():+.2f}")
        lines.append(f"| {label(name)} | {','.join(map(str, seeds))} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


@interruptible
def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description="Table 2: baselines and backbones (alone / + text-mean / + shuffled), "
        "with paired differences and user-bootstrap intervals."
    )
    p.add_argument("--results", required=True, help="folder of <name>_s<seed>.json runs (backbones and baselines)")
    p.add_argument("--shuffled", help="folder of <model>_enh_s<seed>.json runs with shuffled intent stores")
    p.add_argument("--resamples", type=int, default=10_000, help="bootstrap resamples")
    p.add_argument("--json", help="also write the tables' data as JSON here")
    p.add_argument(
        "--versus",
        nargs="+",
        default=[],
        metavar="BASELINE",
        help="more baselines (run names, e.g. vstan) to compare each backbone with, beside the best one on validation",
    )
    p.add_argument(
        "--sensitivity",
        metavar="OTHER_RESULTS",
        help="instead: compare each group's per-seed test metrics with the same group in another "
        "preparation of the data (e.g. same-day ties shuffled)",
    )
    args = p.parse_args(argv)
    try:
        inputs = {"--results": folder_files(args.results), "--shuffled": folder_files(args.shuffled)}
        check_writes({"--json": args.json}, inputs)
    except ValueError as err:
        p.error(str(err))
    if args.sensitivity:
        print(sensitivity_table(Path(args.results), Path(args.sensitivity)))
        return 0
    try:
        text, data = table2(
            Path(args.results),
            Path(args.shuffled) if args.shuffled else None,
            resamples=args.resamples,
            versus=args.versus,
        )
    except ValueError as err:
        p.error(str(err))
    print(text)
    if args.json:
        atomic_write_text(args.json, json.dumps(data, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
