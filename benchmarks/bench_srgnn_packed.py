"""Time SR-GNN training steps: the dense textbook update against the packed one, and Adam against fused Adam.

Three variants train side by side on the same batches of a prepared split, in alternating rounds
(each round times every variant on its own share of batches, so a noisy neighbour hits all of them):

* ``dense``: :func:`llm4sbr_adapter.experiments.models.backbones.srgnn.dense_reference_embeddings` (linear maps over
  the padded
  ``[B, n, d]`` grid, dense ``adj @ x``), ``torch.optim.Adam`` as before;
* ``packed``: :meth:`SRGNN.states` (real nodes and clicks only, sparse messages), the same Adam;
* ``packed+fused``: the packed model with ``Adam(fused=True)``, what ``llm4sbr_adapter/experiments/training/train.py``
  uses.

Prints milliseconds per training step (forward, CE over all items, backward, optimiser step) and the
ratios to ``dense``. Before timing it checks that dense and packed give the same session embeddings.

    python benchmarks/bench_srgnn_packed.py --data /work/runs/beauty --batches 60 --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from llm4sbr_adapter.experiments.data.catalogue import count_items  # noqa: E402
from llm4sbr_adapter.experiments.data.splits import load_split  # noqa: E402
from llm4sbr_adapter.experiments.models.backbones.srgnn import SRGNN, dense_reference_embeddings  # noqa: E402
from llm4sbr_adapter.experiments.models.batching import iterate_batches  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description="Dense vs packed SR-GNN and Adam vs fused Adam, ms per training step.")
    p.add_argument(
        "--data",
        required=True,
        help="prepared data folder (llm4sbr_adapter.experiments.data.prepare_data) with train.txt, items.tsv",
    )
    p.add_argument("--batches", type=int, default=60, help="training batches per variant per round")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds; the median per variant is reported")
    p.add_argument("--batch-size", type=int, default=100, help="sessions per batch")
    p.add_argument("--hidden-size", type=int, default=100, help="embedding width d")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--seed", type=int, default=0, help="seed for the model and the batch order")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    data = load_split(Path(args.data) / "train.txt")
    num_items = count_items(args.data, [data])
    batches = []
    for k, batch in enumerate(iterate_batches(data, args.batch_size, shuffle=True, seed=args.seed, graph=True)):
        if k == args.batches * args.rounds:
            break
        batches.append(batch)

    def make(fused: bool, dense: bool):
        torch.manual_seed(args.seed)
        model = SRGNN(num_items, args.hidden_size)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-5, fused=fused)
        embed = (lambda b: dense_reference_embeddings(model, b)) if dense else model.session_embeddings
        return model, opt, embed

    variants = {"dense": make(False, True), "packed": make(False, False), "packed+fused": make(True, False)}
    with torch.no_grad():
        ref = dense_reference_embeddings(variants["packed"][0], batches[0])
        got = variants["packed"][0].session_embeddings(batches[0])
        err = max(float((a - b).abs().max()) for a, b in zip(ref, got, strict=True))
    print(f"max |dense - packed| on one batch: {err:.2e}")

    times: dict[str, list[float]] = {name: [] for name in variants}
    for r in range(args.rounds):
        share = batches[r * args.batches : (r + 1) * args.batches]
        for name, (model, opt, embed) in variants.items():
            t0 = time.perf_counter()
            for b in share:
                h_local, h_global = embed(b)
                loss = F.cross_entropy(model.scores(model.fuse(h_local, h_global)), b.targets - 1)
                opt.zero_grad()
                loss.backward()
                opt.step()
            times[name].append((time.perf_counter() - t0) / len(share) * 1e3)
    lengths = data.lengths
    print(
        f"{args.data}: {len(data)} train rows, mean input length {lengths.mean():.2f}, {num_items} items; "
        f"{args.rounds} rounds x {args.batches} batches of {args.batch_size}, {args.threads} thread(s)"
    )
    base = statistics.median(times["dense"])
    for name, ts in times.items():
        med = statistics.median(ts)
        print(
            f"{name:>13}: {med:7.1f} ms/step (rounds: {', '.join(f'{t:.1f}' for t in ts)})  "
            f"dense/this = {base / med:.2f}x  -> {med * len(data) / args.batch_size / 1e3:.0f} s per epoch of steps"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
