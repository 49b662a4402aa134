"""Benchmark: the same GGUF model run by transformers (float32, batched) vs llama.cpp (quantised).

Both backends answer the same prompts, greedy, in one process. The prompts are split into chunks and
each chunk is answered by both backends back to back, alternating which goes first, so drift in the
load of a shared machine hits both alike. Prints prompts/s of each, their ratio, and how many answers
agree exactly (they can differ: llama.cpp computes with the quantised weights, transformers with the
dequantised float32 ones).

Prompts come from a JSONL file written by ``build_store --dry-run --export-prompts`` (a seeded sample
of ``--n-prompts`` of them) or, without ``--prompts``, from the demo sessions.

Example:
    python -m llm4sbr_adapter.build_store --sessions train.txt --items items.tsv --dry-run \\
        --export-prompts /tmp/prompts.jsonl
    python benchmarks/bench_llm_backends.py --prompts /tmp/prompts.jsonl --n-prompts 24 --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def load_prompts(path: str | None, n: int, seed: int) -> tuple[list[str], str]:
    """A seeded sample of ``n`` distinct prompts from an export file (default: the demo's prompts)."""
    source = path
    if path is None:
        import tempfile

        from llm4sbr_adapter.build_store import demo_paths
        from llm4sbr_adapter.offline.pipeline import build_intent_store

        path = os.path.join(tempfile.mkdtemp(), "demo_prompts.jsonl")
        build_intent_store(*demo_paths(), None, dry_run=True, export_prompts=path, progress=False)
        source = "demo sessions"
    with open(path, encoding="utf-8") as f:
        rows = [json.loads(line)["prompt"] for line in f if line.strip()]
    unique = list(dict.fromkeys(rows))
    sample = random.Random(seed).sample(unique, min(n, len(unique)))
    return sample, f"{source} ({len(unique)} distinct prompts, sample seed {seed})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", help="JSONL of exported prompts (field 'prompt'); default: the demo sessions")
    parser.add_argument("--n-prompts", type=int, default=24, help="prompts answered by each backend (default 24)")
    parser.add_argument("--chunk", type=int, default=8, help="prompts per alternating chunk and per transformers batch")
    parser.add_argument("--max-new-tokens", type=int, default=32, help="generated tokens per prompt at most")
    parser.add_argument("--threads", type=int, default=0, help="threads for both backends (0 = all CPUs)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the prompt sample")
    args = parser.parse_args(argv)

    import torch

    from llm4sbr_adapter.offline.llm import GenerationConfig, make_backend

    threads = args.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    prompts, source = load_prompts(args.prompts, args.n_prompts, args.seed)
    print(f"{len(prompts)} prompts from {source}; {threads} threads; load average {os.getloadavg()[0]:.1f}")

    backends = {}
    for name, spec, kw in (
        ("transformers", "default", {"batch_size": args.chunk}),
        ("llama.cpp", "llamacpp:default", {"n_threads": threads}),
    ):
        t0 = time.perf_counter()
        backends[name] = make_backend(spec, **kw)
        print(f"{name}: {backends[name].model_id}, loaded in {time.perf_counter() - t0:.1f} s")

    cfg = GenerationConfig(max_new_tokens=args.max_new_tokens)
    for b in backends.values():  # warm-up
        b.generate(prompts[:1], GenerationConfig(max_new_tokens=2))
    answers = {name: [] for name in backends}
    seconds = {name: 0.0 for name in backends}
    names = list(backends)
    for k, start in enumerate(range(0, len(prompts), args.chunk)):
        chunk = prompts[start : start + args.chunk]
        for name in names if k % 2 == 0 else names[::-1]:
            t0 = time.perf_counter()
            answers[name].extend(backends[name].generate(chunk, cfg))
            seconds[name] += time.perf_counter() - t0

    n = len(prompts)
    for name in names:
        print(f"{name:>12}: {seconds[name]:7.1f} s, {n / seconds[name]:.3f} prompts/s")
    ratio = seconds["transformers"] / seconds["llama.cpp"]
    same = sum(a.strip() == b.strip() for a, b in zip(answers["transformers"], answers["llama.cpp"], strict=True))
    print(f"speed-up of llama.cpp over transformers: {ratio:.2f}x; identical answers {same}/{n}")
    for a, b in list(zip(answers["transformers"], answers["llama.cpp"], strict=True))[:6]:
        print(f"  transformers: {a.strip()[:70]!r}\n  llama.cpp:    {b.strip()[:70]!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
