"""Benchmark: converting the default GGUF with its metadata parsed once vs three times, side by side.

transformers reads a GGUF's metadata for the tokenizer, the config and the weights, parsing every
field each time; ``read_gguf_once`` (``llm4sbr_adapter/offline/llm/gguf_once.py``) keeps one parse per
file for the duration of a load. Each round loads the default model from its GGUF twice in this process
(``TransformersBackend(gguf, cache_converted=False)``: dequantise, convert the tokenizer, nothing
written), once with and once without it, alternating which goes first; it prints the seconds, how many
``gguf.GGUFReader`` objects each load built, and the ratio of the medians.

Example:
    python benchmarks/bench_gguf_conversion.py --rounds 3 --threads 2
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the two loads (default %(default)s)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default %(default)s)")
    args = parser.parse_args(argv)

    import gguf
    import torch

    import llm4sbr_adapter.offline.llm.transformers_backend as backend_module
    from llm4sbr_adapter.offline.llm.default_model import default_llm_path

    torch.set_num_threads(args.threads)
    path = default_llm_path()
    built = {"readers": 0}
    reader_class = gguf.GGUFReader

    class CountingReader(reader_class):  # type: ignore[misc,valid-type]
        def __init__(self, *a, **kw) -> None:
            built["readers"] += 1
            super().__init__(*a, **kw)

    gguf.GGUFReader = CountingReader
    variants = {"parsed once": backend_module.read_gguf_once, "parsed three times": contextlib.nullcontext}
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    print(f"{path.name}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f}")
    for r in range(args.rounds):
        for name in list(variants) if r % 2 == 0 else list(variants)[::-1]:
            backend_module.read_gguf_once = variants[name]
            built["readers"] = 0
            t0 = time.perf_counter()
            backend = backend_module.TransformersBackend(path, cache_converted=False)
            seconds[name].append(time.perf_counter() - t0)
            print(f"round {r} {name:<20} {seconds[name][-1]:6.1f} s, {built['readers']} GGUFReader(s)", flush=True)
            del backend
    once, thrice = (statistics.median(v) for v in seconds.values())
    print(f"median: parsed once {once:.1f} s, three times {thrice:.1f} s: {thrice / once:.2f}x faster")
    return 0


if __name__ == "__main__":
    sys.exit(main())
