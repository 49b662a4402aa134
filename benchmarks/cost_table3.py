"""Cost of the enhancer (the paper's Table 3): training time per epoch and peak memory, alone vs with it.

For each backbone the script trains one epoch alone and one epoch with the enhancer, each in its own
``python -m llm4sbr_adapter.experiments.training.train`` process (so peak RSS is per variant), back to back and
alternating which
goes first over ``--rounds`` rounds, so that load drift on a shared machine hits both variants alike.
It prints the medians and the ratios enhancer / alone: wall and CPU seconds per epoch, and memory with
the trained state (parameters, gradients, Adam's moments) apart from the intent store's resident pages
(memory-mapped data, like the dataset). The intent stores' content does not change the
cost, so any store with the right rows works (the text-mean control stores are cheapest to make).

Example:
    python benchmarks/cost_table3.py --data /work/runs/ml100k --stores /work/runs/ml100k/stores \\
        --store-prefix text_mean --models srgnn narm stamp --rounds 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_once(args: argparse.Namespace, model: str, enhancer: bool, out: Path) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "llm4sbr_adapter.experiments.training.train",
        "--data",
        args.data,
        "--model",
        model,
        "--epochs",
        "1",
        "--patience",
        "0",
        "--seed",
        "0",
        "--threads",
        str(args.threads),
        "--out",
        str(out),
        "--quiet",
    ]
    if enhancer:
        cmd.append("--enhancer")
        for split in ("train", "valid", "test"):
            cmd += [f"--store-{split}", str(Path(args.stores) / f"{args.store_prefix}_{split}.safetensors")]
    subprocess.run(cmd, check=True, cwd=REPO)
    return json.loads(out.read_text())


KEYS = (
    "seconds_per_epoch_train",
    "cpu_seconds_per_epoch_train",
    "peak_rss_mb",
    "peak_rss_mb_without_store",
    "store_rss_mb",
    "model_optimizer_mb",
    "parameters",
)


def print_time_table(rows: list) -> None:
    """Seconds per training epoch: wall and CPU (the process's own work, which other jobs on a shared
    machine do not inflate as they inflate wall time), alone vs with the enhancer, and the ratios."""
    print("| backbone | s/epoch alone | + enhancer | time ratio | CPU s/epoch alone | + enhancer | CPU time ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for model, med in rows:
        a, e = med[False], med[True]
        wall, cpu = "seconds_per_epoch_train", "cpu_seconds_per_epoch_train"
        print(
            f"| {model} | {a[wall]:.1f} | {e[wall]:.1f} | {e[wall] / a[wall]:.3f}x | "
            f"{a[cpu]:.1f} | {e[cpu]:.1f} | {e[cpu] / a[cpu]:.3f}x |"
        )


def print_memory_table(rows: list) -> None:
    """Memory: the trained state (parameters, gradients, Adam's moments) apart from the intent store's
    resident pages (data, like the dataset), and the peak RSS with and without those pages."""
    print(
        "| backbone | model + optimiser MiB alone | + enhancer | ratio | store pages resident MiB | "
        "peak RSS MiB alone | + enhancer | + enhancer without store pages | parameters alone | + enhancer |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for model, med in rows:
        a, e = med[False], med[True]
        mo, nan = "model_optimizer_mb", float("nan")
        print(
            f"| {model} | {a[mo]:.1f} | {e[mo]:.1f} | {e[mo] / a[mo]:.3f}x | {e.get('store_rss_mb', nan):.0f} | "
            f"{a['peak_rss_mb']:.0f} | {e['peak_rss_mb']:.0f} | "
            f"{e.get('peak_rss_mb_without_store', nan):.0f} | {int(a['parameters']):,} | "
            f"{int(e['parameters']):,} |"
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="prepared data folder (llm4sbr_adapter.experiments.data.prepare_data)")
    p.add_argument("--stores", required=True, help="folder with <prefix>_{train,valid,test}.safetensors")
    p.add_argument("--store-prefix", default="text_mean", help="store file prefix inside --stores (default text_mean)")
    p.add_argument("--models", nargs="+", default=["srgnn", "narm", "stamp"], help="backbones to measure")
    p.add_argument("--rounds", type=int, default=3, help="alone/enhancer pairs per backbone (default 3)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run (default 1)")
    args = p.parse_args(argv)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            got: dict[bool, list[dict]] = {False: [], True: []}
            for r in range(args.rounds):
                for enh in (False, True) if r % 2 == 0 else (True, False):
                    got[enh].append(run_once(args, model, enh, Path(tmp) / f"{model}_{int(enh)}_{r}.json"))
            med = {
                enh: {k: statistics.median(x[k] for x in got[enh]) for k in KEYS if got[enh][0].get(k) is not None}
                for enh in got
            }
            rows.append((model, med))
            print(
                f"{model}: alone {med[False]['seconds_per_epoch_train']:.1f} s/epoch, "
                f"{med[False]['peak_rss_mb']:.0f} MiB; enhancer {med[True]['seconds_per_epoch_train']:.1f} s/epoch, "
                f"{med[True]['peak_rss_mb']:.0f} MiB",
                flush=True,
            )

    print(f"\nmedians over {args.rounds} alternating rounds, {args.threads} thread(s), data {args.data}\n")
    print_time_table(rows)
    print()
    print_memory_table(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
