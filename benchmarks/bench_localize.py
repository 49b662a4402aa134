"""Top-f cosine search for intent localisation: FAISS IndexFlatIP vs torch matmul + topk (and HNSW).

Both sides get the same L2-normalised float32 catalogue and queries (random unit vectors of the
size of Amazon Beauty's catalogue by default) and must return the same top-f item sets; the
script prints the agreement, both search times and their ratio. HNSW is timed too (build and
search, with its recall against the exact result). ``ItemLocalizer.localize`` (search + softmax
+ weighted sum) is timed as the end-to-end number the builder pays.

Example::

    python benchmarks/bench_localize.py                       # 12,101 x 384, 10,000 queries, f=5
    python benchmarks/bench_localize.py --items 1000000 --queries 2000 --no-hnsw
"""

from __future__ import annotations

import argparse
import os
import time

import faiss
import numpy as np
import torch

from llm4sbr_adapter.offline.localize import ItemLocalizer


def unit_rows(rng: np.random.Generator, n: int, dim: int, chunk: int = 100_000) -> np.ndarray:
    """``float32 [n, dim]`` random unit vectors, generated in chunks to bound peak memory."""
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, chunk):
        block = rng.standard_normal((min(chunk, n - start), dim), dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start : start + len(block)] = block
    return out


def torch_topk(items: torch.Tensor, queries: torch.Tensor, k: int, chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact top-k by inner product with one ``[chunk, M]`` score matrix at a time."""
    sims, idx = [], []
    for start in range(0, len(queries), chunk):
        scores = queries[start : start + chunk] @ items.T  # [chunk, M]
        s, i = torch.topk(scores, k, dim=1)
        sims.append(s)
        idx.append(i)
    return torch.cat(sims), torch.cat(idx)


def best_of(fn, repeat: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best, result


def set_agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of rows whose top-f sets are identical."""
    return float(np.mean((np.sort(a, axis=1) == np.sort(b, axis=1)).all(axis=1)))


def overlap(approx: np.ndarray, exact: np.ndarray) -> float:
    """recall@f: share of exact top-f items that the approximate search returned."""
    hits = sum(len(set(x) & set(y)) for x, y in zip(approx.tolist(), exact.tolist(), strict=True))
    return hits / exact.size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=12_101, help="catalogue size M (Beauty: 12,101 items)")
    parser.add_argument("--dim", type=int, default=384, help="embedding size D (all-MiniLM-L6-v2: 384)")
    parser.add_argument("--queries", type=int, default=10_000, help="number of query vectors Q")
    parser.add_argument("--top-f", type=int, default=5, help="items per query f")
    parser.add_argument(
        "--torch-chunk", type=int, default=2048, help="queries per torch matmul (bounds the [chunk, M] score matrix)"
    )
    parser.add_argument(
        "--threads", type=int, default=0, help="CPU threads for both FAISS and torch (0 = leave defaults, but equal)"
    )
    parser.add_argument(
        "--device", default="cpu", help="torch device for the matmul side (cpu or cuda); FAISS runs on CPU"
    )
    parser.add_argument("--repeat", type=int, default=3, help="timed repetitions; the best is reported")
    parser.add_argument("--no-hnsw", action="store_true", help="skip the HNSW build and search")
    parser.add_argument("--hnsw-m", type=int, default=32, help="HNSW graph degree")
    parser.add_argument("--ef-search", type=int, default=128, help="HNSW efSearch")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    args = parser.parse_args()

    threads = args.threads or min(torch.get_num_threads(), faiss.omp_get_max_threads())
    torch.set_num_threads(threads)
    faiss.omp_set_num_threads(threads)
    rng = np.random.default_rng(args.seed)
    items = unit_rows(rng, args.items, args.dim)
    queries = unit_rows(rng, args.queries, args.dim)
    f = args.top_f
    print(
        f"catalogue {args.items:,} x {args.dim}, {args.queries:,} queries, top-f {f}, {threads} threads, "
        f"torch {torch.__version__} on {args.device}, faiss {faiss.__version__}, cpus visible {os.cpu_count()}"
    )

    t0 = time.perf_counter()
    flat = faiss.IndexFlatIP(args.dim)
    flat.add(items)
    flat_build = time.perf_counter() - t0
    flat_time, (f_sims, f_idx) = best_of(lambda: flat.search(queries, f), args.repeat)

    t_items = torch.from_numpy(items).to(args.device)
    t_queries = torch.from_numpy(queries).to(args.device)
    torch_topk(t_items, t_queries[:64], f, args.torch_chunk)  # warm-up
    torch_time, (t_sims, t_idx) = best_of(lambda: torch_topk(t_items, t_queries, f, args.torch_chunk), args.repeat)
    t_idx = t_idx.cpu().numpy()
    agree = set_agreement(f_idx, t_idx)
    max_sim_diff = float(np.abs(np.sort(f_sims, axis=1) - np.sort(t_sims.cpu().numpy(), axis=1)).max())

    print(f"\n{'method':<34}{'build s':>10}{'search s':>11}{'us/query':>11}")
    print(f"{'faiss IndexFlatIP':<34}{flat_build:>10.3f}{flat_time:>11.3f}{flat_time / args.queries * 1e6:>11.1f}")
    print(f"{'torch matmul + topk':<34}{0.0:>10.3f}{torch_time:>11.3f}{torch_time / args.queries * 1e6:>11.1f}")
    print(f"top-{f} sets identical for {agree:.4%} of queries; max |cosine difference| {max_sim_diff:.2e}")
    print(f"ratio torch / faiss flat search time: {torch_time / flat_time:.2f}x")

    if not args.no_hnsw:
        t0 = time.perf_counter()
        hnsw = ItemLocalizer(items, index="hnsw", hnsw_m=args.hnsw_m, ef_search=args.ef_search)
        hnsw_build = time.perf_counter() - t0
        hnsw_time, (_, h_idx) = best_of(lambda: hnsw.search(queries, f), args.repeat)
        print(
            f"{f'faiss HNSW (M={args.hnsw_m}, ef={args.ef_search})':<34}{hnsw_build:>10.3f}{hnsw_time:>11.3f}"
            f"{hnsw_time / args.queries * 1e6:>11.1f}"
        )
        print(
            f"HNSW recall@{f} vs exact: {overlap(h_idx, f_idx):.4f}; "
            f"ratio flat / HNSW search time: {flat_time / hnsw_time:.2f}x"
        )

    localizer = ItemLocalizer(items)
    loc_time, (vecs, idx, w) = best_of(lambda: localizer.localize(queries, f), args.repeat)
    print(
        f"\nItemLocalizer.localize (flat search + softmax + weighted sum): {loc_time:.3f} s "
        f"({loc_time / args.queries * 1e6:.1f} us/query); same top-{f} as faiss: {set_agreement(idx, f_idx):.4%}"
    )


if __name__ == "__main__":
    main()
