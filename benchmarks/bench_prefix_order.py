"""Benchmark: llama.cpp answering prompts in sorted order (prompt-prefix reuse) vs without shared prefixes.

llama.cpp keeps the key/value cache of the previous prompt and reads only the tokens after the longest
shared prefix. With prefix augmentation (Amazon Beauty: one training row per prefix of a user's
history) the long-term prompts of one user share their opening item lines, so asking the prompts in
sorted order (what ``answer_prompts`` does for a backend with ``reuses_prompt_prefix``) saves prompt
reading. This script measures it on real exported prompts:

* token counts, from the model's own tokenizer: average prompt length and average tokens left to read
  after the shared prefix with the previous prompt, in file order and in sorted order, over every
  distinct prompt of the chosen perspective (no model run);
* wall time: a block of ``--n-prompts`` prompts that are neighbours in sorted order (from a seeded
  offset, so it holds the prefix chains a sorted full split holds), answered by one loaded model in
  sorted order and in a seeded shuffled order (no chains next to each other, like a file whose rows
  interleave users), the two orders alternating over ``--rounds`` rounds so drift in a shared
  machine's load hits both; and how many answers agree between the orders.

Example:
    python -m llm4sbr_adapter.build_store --sessions beauty/train.txt --items beauty/items.tsv \\
        --dry-run --export-prompts /tmp/beauty_train_prompts.jsonl
    python benchmarks/bench_prefix_order.py --prompts /tmp/beauty_train_prompts.jsonl --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time


def read_prompts(path: str, perspective: str) -> list[str]:
    """Distinct prompts of one perspective, in file order."""
    with open(path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    prompts = [r["prompt"] for r in rows if r.get("perspective") == perspective]
    if not prompts:
        raise SystemExit(f"{path}: no prompts with perspective {perspective!r}")
    return list(dict.fromkeys(prompts))


def tokens_to_read(token_lists: list[list[int]]) -> float:
    """Average tokens per prompt after the prefix shared with the previous prompt (in the given order)."""
    total, prev = 0, []
    for toks in token_lists:
        total += len(toks) - len(os.path.commonprefix([toks, prev]))
        prev = toks
    return total / max(len(token_lists), 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", required=True, help="JSONL written by build_store --export-prompts")
    parser.add_argument("--perspective", default="long", help="which perspective's prompts (default long)")
    parser.add_argument(
        "--model", default="default", help="GGUF file, or 'default' for the embedded default model (default)"
    )
    parser.add_argument("--n-prompts", type=int, default=48, help="prompts in the timed block (default 48)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds of the two orders (default 2)")
    parser.add_argument("--max-new-tokens", type=int, default=32, help="generated tokens per prompt at most")
    parser.add_argument("--threads", type=int, default=0, help="llama.cpp threads (0 = all CPUs)")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the block's offset in sorted order and of its shuffle"
    )
    args = parser.parse_args(argv)

    from llm4sbr_adapter.offline.llm import GenerationConfig, make_backend

    prompts = read_prompts(args.prompts, args.perspective)
    backend = make_backend(f"llamacpp:{args.model}", n_threads=args.threads or None)
    tokenize = backend.llm.tokenize

    toks = [tokenize(p.encode("utf-8"), add_bos=False) for p in prompts]
    avg_len = sum(map(len, toks)) / len(toks)
    order = sorted(range(len(prompts)), key=prompts.__getitem__)  # by text, as answer_prompts sorts
    in_file, in_sorted = tokens_to_read(toks), tokens_to_read([toks[i] for i in order])
    print(f"{len(prompts)} distinct {args.perspective!r} prompts in {args.prompts}; {backend.n_threads} threads")
    print(
        f"tokens per prompt (user message, without the chat template): {avg_len:.1f}; left to read after "
        f"the previous prompt's prefix: file order {in_file:.1f}, sorted {in_sorted:.1f} "
        f"({in_file / in_sorted:.2f}x fewer)"
    )

    n = min(args.n_prompts, len(prompts))
    start = random.Random(args.seed).randrange(0, len(prompts) - n + 1)
    chosen = order[start : start + n]
    shuffled = list(chosen)
    random.Random(args.seed + 1).shuffle(shuffled)
    orders = {"shuffled": [prompts[i] for i in shuffled], "sorted": [prompts[i] for i in chosen]}
    block = orders["sorted"]
    cfg = GenerationConfig(max_new_tokens=args.max_new_tokens)
    backend.generate(["warm-up"], GenerationConfig(max_new_tokens=2))
    seconds = {name: 0.0 for name in orders}
    answers: dict[str, dict[str, str]] = {name: {} for name in orders}
    names = list(orders)
    for r in range(args.rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            backend.generate(["an unrelated prompt to clear the shared prefix"], GenerationConfig(max_new_tokens=1))
            t0 = time.perf_counter()
            got = backend.generate(orders[name], cfg)
            seconds[name] += time.perf_counter() - t0
            answers[name].update(zip(orders[name], got, strict=True))
    print(
        f"timed block: sorted positions {start}..{start + n - 1}, {args.rounds} rounds; load average "
        f"{os.getloadavg()[0]:.1f}; tokens left to read per prompt: shuffled "
        f"{tokens_to_read([toks[i] for i in shuffled]):.1f}, sorted {tokens_to_read([toks[i] for i in chosen]):.1f}"
    )
    for name in names:
        print(f"{name:>11}: {seconds[name]:7.1f} s, {n * args.rounds / seconds[name]:.3f} prompts/s")
    same = sum(answers["shuffled"][p].strip() == answers["sorted"][p].strip() for p in block)
    print(
        f"speed-up of sorted over shuffled: {seconds['shuffled'] / seconds['sorted']:.2f}x; "
        f"identical answers {same}/{n}"
    )
    backend.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
