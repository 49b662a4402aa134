"""CPU time of one training step of SR-GNN with HIPHOP parts vs plain SR-GNN, side by side, plus the bank rebuild.

Every configuration is built by ``llm4sbr_adapter.experiments.training.hiphop_srgnn`` from its flags (so it is the
harness's model), on a prepared split; their steps alternate over the same shuffled batches (the order flips
every batch). Title vectors are random unit vectors (the cost does not depend on their content, and no
encoder has to run). Times are CPU seconds of this process (``time.process_time``, one torch thread), which
other jobs on a shared machine inflate far less than wall time. Printed per configuration: median CPU ms per
step, its ratio to the first configuration, the CPU seconds of one neighbour-bank rebuild (once per epoch)
and the estimated epoch ratio ``(steps * ms + rebuild) / (steps * ms of the first)``.

Example:
    python benchmarks/bench_hiphop_step.py --data /work/runs/paper/beauty/seed0 --configs plain all intents \\
        --extra --group-by-user --bank-index ivf --bank-nprobe 16
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import llm4sbr_adapter.experiments.training.hiphop_srgnn as harness
from llm4sbr_adapter.experiments.models.batching import iterate_batches

CONFIGS = {
    "plain": [],
    "sem_add": ["--semantic", "add"],
    "intents": ["--intents"],
    "neigh": ["--neighbours"],
    "neigh_cl": ["--neighbours", "--contrastive"],
    "all": ["--semantic", "add", "--intents", "--neighbours", "--contrastive"],
}


def random_titles(data_dir, num_items, cache, spec=None, batch_size=64):
    """Stands in for ``hiphop_srgnn.title_matrix``: unit random vectors, row 0 (padding) untitled."""
    gen = torch.Generator().manual_seed(0)
    text = torch.nn.functional.normalize(torch.randn(num_items + 1, 384, generator=gen), dim=1)
    text[0] = 0
    has = torch.ones(num_items + 1, dtype=torch.bool)
    has[0] = False
    return text, has


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="prepared data folder")
    p.add_argument("--configs", nargs="+", default=["plain", "all"], choices=sorted(CONFIGS), help="first = base")
    p.add_argument("--steps", type=int, default=100, help="timed steps per configuration (default 100)")
    p.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="flags added to every configuration")
    args = p.parse_args(argv)
    harness.title_matrix = random_titles
    torch.set_num_threads(1)

    models, data = {}, None
    for name in args.configs:
        run_args = harness.parse_args(["--data", args.data, "--out", "unused.json", *CONFIGS[name], *args.extra])
        data_dir, data, num_items = harness.load_run_data(harness.train_config(run_args))
        model = harness.HiphopRecommender.from_args(run_args, num_items, data, data_dir)
        t0 = time.process_time()
        model.refresh_bank(data["train"])
        rebuild = time.process_time() - t0
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
        model.train(True)
        model.use_split("train")
        models[name] = (model, opt, rebuild, [])

    order = list(models.values())
    for k, batch in enumerate(iterate_batches(data["train"], 100, shuffle=True, seed=1, graph=True)):
        if k == args.steps + 10:
            break
        for model, opt, _, times in order if k % 2 else order[::-1]:
            t0 = time.process_time()
            ce, aux, _ = model.loss_and_scores(batch, training=True)
            opt.zero_grad(set_to_none=True)
            (ce + aux).backward()
            opt.step()
            if k >= 10:  # warm-up steps are not counted
                times.append(time.process_time() - t0)

    steps = -(-len(data["train"]) // 100)
    base = statistics.median(order[0][3])
    print(f"{len(order[0][3])} steps per configuration, batch 100, {steps} steps per epoch, 1 thread")
    print("| config | CPU ms/step | step ratio | bank rebuild CPU s | epoch ratio (steps + rebuild) |")
    print("|---|---:|---:|---:|---:|")
    for name, (_, _, rebuild, times) in models.items():
        med = statistics.median(times)
        epoch = (steps * med + rebuild) / (steps * base)
        print(f"| {name} | {1e3 * med:.1f} | {med / base:.2f}x | {rebuild:.1f} | {epoch:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
