"""Batch lookup of intent vectors: IntentStore vs a table of stringified Python lists.

The LLM4SBR authors' released code keeps each session's intent embedding as ``str(list)`` in a
table column and turns a batch back into numbers with ``ast.literal_eval`` row by row. This
script builds both representations of the same ``N x D`` float32 intents and times fetching
batches of random session ids:

* ``IntentStore.lookup`` (memory-mapped, and fully loaded with ``mmap=False``);
* dict ``{session_id: str(list)}`` + ``ast.literal_eval`` per row + ``torch.tensor`` (the
  in-memory table; a CSV file would add its own read time on top).

Both must return the same numbers; per-batch times and the ratio are printed.

Example::

    python benchmarks/bench_store_lookup.py --sessions 50000 --dim 384 --batch 100
"""

from __future__ import annotations

import argparse
import ast
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from llm4sbr_adapter.store import IntentStore, StoreMetadata, write_store


def time_batches(fn, batches: list[np.ndarray]) -> list[float]:
    """Wall time of ``fn(batch)`` for each batch, in seconds."""
    times = []
    for batch in batches:
        t0 = time.perf_counter()
        fn(batch)
        times.append(time.perf_counter() - t0)
    return times


def summary(times: list[float]) -> str:
    ms = [t * 1e3 for t in times]
    return f"median {statistics.median(ms):9.3f} ms   mean {statistics.fmean(ms):9.3f} ms   min {min(ms):9.3f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=50_000, help="number of sessions N in the store")
    parser.add_argument("--dim", type=int, default=384, help="intent vector size D")
    parser.add_argument("--batch", type=int, default=100, help="session ids per lookup batch")
    parser.add_argument("--batches", type=int, default=300, help="timed batches for IntentStore")
    parser.add_argument(
        "--string-batches",
        type=int,
        default=20,
        help="timed batches for the str(list) + literal_eval table (slow: keep small)",
    )
    parser.add_argument("--dir", default=None, help="folder for the temporary store (default: a temp dir)")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    intents = rng.standard_normal((args.sessions, args.dim), dtype=np.float32)
    session_ids = np.arange(args.sessions, dtype=np.int64)
    batches = [rng.choice(args.sessions, size=args.batch, replace=False) for _ in range(args.batches)]

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = Path(tmp) / "bench.safetensors"
        t0 = time.perf_counter()
        write_store(path, session_ids, {"long": intents}, StoreMetadata(perspectives=["long"], text_dim=args.dim))
        write_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        mapped = IntentStore.open(path, mmap=True)
        open_s = time.perf_counter() - t0
        loaded = IntentStore.open(path, mmap=False)

        t0 = time.perf_counter()
        table = {int(i): str(row) for i, row in zip(session_ids, intents.tolist(), strict=True)}
        table_s = time.perf_counter() - t0
        table_mb = sum(len(v) for v in table.values()) / 1e6

        def string_lookup(batch: np.ndarray) -> torch.Tensor:
            return torch.tensor([ast.literal_eval(table[int(i)]) for i in batch], dtype=torch.float32)

        def store_lookup(store: IntentStore):
            return lambda batch: store.lookup(batch)["long"]

        # same numbers from every path
        check = batches[0]
        ref = torch.from_numpy(intents[check])
        for name, fn in (
            ("mmap", store_lookup(mapped)),
            ("in-memory", store_lookup(loaded)),
            ("str(list)", string_lookup),
        ):
            got = fn(check)
            if not torch.equal(got, ref):
                raise SystemExit(f"{name} lookup returned different values")

        for fn in (store_lookup(mapped), store_lookup(loaded), string_lookup):  # warm-up
            fn(batches[1])
        mmap_t = time_batches(store_lookup(mapped), batches)
        mem_t = time_batches(store_lookup(loaded), batches)
        str_t = time_batches(string_lookup, batches[: args.string_batches])

    print(
        f"{args.sessions:,} sessions x {args.dim} float32, batches of {args.batch} random ids, "
        f"torch {torch.__version__}"
    )
    print(
        f"store: written in {write_s:.2f} s ({path.name}, {args.sessions * args.dim * 4 / 1e6:.0f} MB of vectors), "
        f"opened (mmap) in {open_s * 1e3:.1f} ms"
    )
    print(f"str(list) table: built in {table_s:.2f} s, {table_mb:.0f} MB of text")
    print(f"\nper batch ({args.batches} batches; str(list): {len(str_t)} batches)")
    print(f"  IntentStore.lookup, mmap=True   {summary(mmap_t)}")
    print(f"  IntentStore.lookup, mmap=False  {summary(mem_t)}")
    print(f"  dict str(list) + literal_eval   {summary(str_t)}")
    ratio = statistics.median(str_t) / statistics.median(mmap_t)
    print(
        f"\nratio (median per batch) str(list)+literal_eval / IntentStore mmap: {ratio:.0f}x; "
        f"/ in-memory: {statistics.median(str_t) / statistics.median(mem_t):.0f}x"
    )


if __name__ == "__main__":
    main()
