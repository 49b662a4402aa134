"""Run the reproduction grid (backbones x {alone, + enhancer} x seeds) and summarise it.

Each run is one ``python -m llm4sbr_adapter.experiments.training.train`` process (so peak memory is measured per run)
writing
``<runs>/<model>[_enh]_s<seed>.json``; runs whose JSON already exists are skipped, so an interrupted
grid resumes where it stopped. At the end ``experiments.evaluation.summarize`` prints the Markdown tables and writes
``<runs>/summary.json``.

Example (ML-100K, text-mean control stores):

    python benchmarks/repro_table2.py --data /work/runs/ml100k --stores /work/runs/ml100k/stores \\
        --store-prefix text_mean --runs /work/runs/ml100k/results --models srgnn narm stamp --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    p = argparse.ArgumentParser(
        description="Run backbones with and without the intent enhancer over seeds, then summarise."
    )
    p.add_argument("--data", required=True, help="prepared data folder (llm4sbr_adapter.experiments.data.prepare_data)")
    p.add_argument("--stores", help="folder with <prefix>_{train,valid,test}.safetensors (needed for enhancer runs)")
    p.add_argument("--store-prefix", default="text_mean", help="store file prefix inside --stores")
    p.add_argument("--runs", required=True, help="output folder for the per-run JSON / ranks files")
    p.add_argument("--models", nargs="+", default=["srgnn", "narm", "stamp"], help="backbones to run")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds")
    p.add_argument(
        "--variants",
        nargs="+",
        choices=("alone", "enh"),
        default=["alone", "enh"],
        help="alone = backbone's own fusion, enh = with IntentEnhancer and the stores",
    )
    p.add_argument(
        "--enh-suffix",
        default="_enh",
        help="run name suffix of the enhancer variant (<model><suffix>_s<seed>.json), e.g. _llm for LLM stores",
    )
    p.add_argument("--epochs", type=int, default=10, help="max epochs per run")
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel (each uses --threads torch threads)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run")
    p.add_argument(
        "--no-summary", action="store_true", help="skip the summary at the end (several calls fill one folder)"
    )
    p.add_argument(
        "--extra",
        nargs=argparse.REMAINDER,
        default=[],
        help="further flags passed to llm4sbr_adapter.experiments.training.train",
    )
    args = p.parse_args()

    runs = Path(args.runs)
    runs.mkdir(parents=True, exist_ok=True)
    jobs = []
    for model in args.models:
        for variant in args.variants:
            for seed in args.seeds:
                out = runs / f"{model}{args.enh_suffix if variant == 'enh' else ''}_s{seed}.json"
                cmd = [
                    sys.executable,
                    "-m",
                    "llm4sbr_adapter.experiments.training.train",
                    "--data",
                    args.data,
                    "--model",
                    model,
                    "--epochs",
                    str(args.epochs),
                    "--seed",
                    str(seed),
                    "--threads",
                    str(args.threads),
                    "--out",
                    str(out),
                    "--quiet",
                ]
                if variant == "enh":
                    if not args.stores:
                        raise SystemExit("enhancer runs need --stores")
                    cmd += ["--enhancer"] + [
                        x
                        for split in ("train", "valid", "test")
                        for x in (
                            f"--store-{split}",
                            str(Path(args.stores) / f"{args.store_prefix}_{split}.safetensors"),
                        )
                    ]
                jobs.append((out, cmd + list(args.extra)))

    def run(job) -> str:
        out, cmd = job
        if out.is_file():
            return f"skip {out.name} (exists)"
        t0 = time.time()
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        if proc.returncode != 0:
            return f"FAILED {out.name} ({proc.returncode}):\n{proc.stderr[-2000:]}"
        return f"{proc.stdout.strip()}  [{time.time() - t0:.0f} s]"

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for line in pool.map(run, jobs):
            print(line, flush=True)
    if args.no_summary:
        return 0
    subprocess.run(
        [
            sys.executable,
            "-m",
            "llm4sbr_adapter.experiments.evaluation.summarize",
            "--runs",
            str(runs),
            "--json",
            str(runs / "summary.json"),
            "--data",
            args.data,
        ],
        cwd=REPO,
        check=False,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
