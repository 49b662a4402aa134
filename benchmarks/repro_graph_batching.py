"""Time SR-GNN session-graph batching: the vectorised builder against a per-session Python loop.

The vectorised builder (``experiments.models.batching.session_graph``) returns sparse graphs: packed node ids
and the list of distinct edges with their degree weights, which is all the packed SR-GNN update needs.
The loop builds what the published SR-GNN data loader builds, dense ``[B, n, n]`` in/out adjacency
matrices. The check compares the loop's matrices with the dense ones the sparse graph expands to (on
request, outside the timing); the ratio is measured in one run.

    python benchmarks/repro_graph_batching.py --data /work/runs/ml100k --batch-size 100
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from llm4sbr_adapter.experiments.data.splits import load_split  # noqa: E402
from llm4sbr_adapter.experiments.models.batching import make_batch  # noqa: E402


def loop_graph(items: np.ndarray, lengths: np.ndarray):
    """The per-session construction (as in the original SR-GNN data loader, without a padding node)."""
    bsz = len(lengths)
    n = max(len(set(items[b, : lengths[b]].tolist())) for b in range(bsz))
    nodes = np.zeros((bsz, n), np.int64)
    alias = np.zeros(items.shape, np.int64)
    adj_in = np.zeros((bsz, n, n), np.float32)
    adj_out = np.zeros((bsz, n, n), np.float32)
    for b in range(bsz):
        seq = items[b, : lengths[b]].tolist()
        uniq = sorted(set(seq))
        index = {item: k for k, item in enumerate(uniq)}
        nodes[b, : len(uniq)] = uniq
        alias[b, : len(seq)] = [index[x] for x in seq]
        a = np.zeros((n, n), np.float32)
        for u, v in zip(seq[:-1], seq[1:], strict=True):
            a[index[u], index[v]] = 1.0
        adj_out[b] = a / np.maximum(a.sum(1, keepdims=True), 1)
        adj_in[b] = a.T / np.maximum(a.sum(0)[:, None], 1)
    return nodes, alias, adj_in, adj_out


def main() -> int:
    p = argparse.ArgumentParser(description="Vectorised vs loop SR-GNN graph batching over one epoch of train.txt.")
    p.add_argument("--data", required=True, help="prepared data folder with train.txt")
    p.add_argument("--batch-size", type=int, default=100, help="sessions per batch")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    data = load_split(Path(args.data) / "train.txt")
    batches = [np.arange(s, min(s + args.batch_size, len(data))) for s in range(0, len(data), args.batch_size)]
    t0 = time.perf_counter()
    graphs = [make_batch(data, rows, graph=True) for rows in batches]
    vec = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref = [loop_graph(b.items.numpy(), b.lengths.numpy()) for b in graphs]
    loop = time.perf_counter() - t0
    same = all(
        np.allclose(g.graph.adj_in.numpy(), r[2])
        and np.allclose(g.graph.adj_out.numpy(), r[3])
        and np.array_equal(g.graph.nodes.numpy(), r[0])
        for g, r in zip(graphs, ref, strict=True)
    )
    print(
        f"{len(data)} sessions, {len(batches)} batches: vectorised {vec:.2f} s (incl. padding), "
        f"loop {loop:.2f} s, loop/vectorised = {loop / vec:.1f}x, identical graphs: {same}"
    )
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
