"""Exact (flat) vs IVF neighbour bank: build time, search time and recall, side by side in one run.

The bank holds real session vectors: one perspective of an intent store of the training split (e.g.
the Beauty text-mean store, 142,325 x 384), optionally cut to ``--dim`` columns. Queries are the
rows of a second store (validation), searched in batches like the HIPHOP head does (top-M per query,
no exclusion, as at test time). Recall@M is the share of the flat bank's top-M that the IVF bank also
returns. Flat and IVF searches alternate batch by batch so that load drift hits both.

    python benchmarks/bench_neighbour_bank.py --bank /work/runs/beauty/stores/text_mean_train.safetensors \\
        --queries /work/runs/beauty/stores/text_mean_valid.safetensors --batches 40
"""

from __future__ import annotations

import argparse
import sys
import time

import faiss
import numpy as np
import torch

from llm4sbr_adapter import IntentStore  # noqa: E402
from llm4sbr_adapter.hiphop.neighbours import SessionNeighbourBank  # noqa: E402


def load_vectors(path: str, perspective: str, dim: int) -> torch.Tensor:
    vectors = np.asarray(IntentStore.open(path).vectors(perspective), dtype=np.float32)  # [N, text_dim]
    return torch.from_numpy(np.ascontiguousarray(vectors[:, :dim] if dim else vectors))


def main() -> int:
    p = argparse.ArgumentParser(description="Flat vs IVF SessionNeighbourBank on real session vectors.")
    p.add_argument("--bank", required=True, help="intent store whose rows fill the bank (training split)")
    p.add_argument("--queries", required=True, help="intent store whose rows are the queries (validation split)")
    p.add_argument("--perspective", default="long", help="store perspective to use as the session vector")
    p.add_argument("--dim", type=int, default=0, help="keep only the first DIM columns (0 = all)")
    p.add_argument("--top-m", type=int, default=10, help="neighbours per query")
    p.add_argument("--batch-size", type=int, default=100, help="queries per search call")
    p.add_argument("--batches", type=int, default=40, help="query batches timed")
    p.add_argument("--nprobe", type=int, nargs="+", default=[8, 16, 32], help="IVF cells searched per query")
    p.add_argument("--threads", type=int, default=1, help="FAISS / torch threads")
    args = p.parse_args()
    faiss.omp_set_num_threads(args.threads)
    torch.set_num_threads(args.threads)

    bank_vecs = load_vectors(args.bank, args.perspective, args.dim)
    queries = load_vectors(args.queries, args.perspective, args.dim)[: args.batch_size * args.batches]
    n, d = bank_vecs.shape
    ids = np.arange(n)
    banks = {"flat": SessionNeighbourBank(d, levels=("global",))}
    banks.update(
        {f"ivf nprobe={k}": SessionNeighbourBank(d, levels=("global",), index="ivf", nprobe=k) for k in args.nprobe}
    )
    build = {}
    for name, bank in banks.items():
        t0 = time.perf_counter()
        bank.build(ids, {"global": bank_vecs})
        build[name] = time.perf_counter() - t0
    seconds = {name: 0.0 for name in banks}
    found = {name: [] for name in banks}
    for b, start in enumerate(range(0, len(queries), args.batch_size)):
        q = queries[start : start + args.batch_size]
        for name in list(banks) if b % 2 == 0 else list(banks)[::-1]:
            t0 = time.perf_counter()
            hits = banks[name].search("global", q, args.top_m)
            seconds[name] += time.perf_counter() - t0
            found[name].append(hits.ids.numpy())
    truth = np.concatenate(found["flat"])
    print(
        f"bank {n} x {d} ({args.bank}, {args.perspective}), {len(queries)} queries in batches of "
        f"{args.batch_size}, top-{args.top_m}, {args.threads} thread(s)"
    )
    for name in banks:
        got = np.concatenate(found[name])
        recall = np.mean([len(set(a) & set(t)) / args.top_m for a, t in zip(got, truth, strict=True)])
        ms = seconds[name] / args.batches * 1e3
        print(
            f"{name:>15}: build {build[name]:6.2f} s, search {ms:7.2f} ms/batch, "
            f"flat/this {seconds['flat'] / seconds[name]:5.1f}x, recall@{args.top_m} vs flat {recall:.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
