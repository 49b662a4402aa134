"""Benchmark of the local LLM backend: one prompt at a time vs batched + length-sorted generation.

Both runs answer the same prompts with the same model in one process, greedy decoding. The script
prints prompts/s of each, their ratio, whether the answers agree, and the achieved model FLOP/s as a
fraction of what a plain float32 matmul reaches on this machine in the same run.

Example:
    python benchmarks/bench_llm.py --n-prompts 16 --batch-size 8 --max-new-tokens 32
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

_SYNTH_WORDS = [
    "Red",
    "Wool",
    "Trail",
    "Coffee",
    "Desk",
    "Lamp",
    "Garden",
    "Travel",
    "Steel",
    "Linen",
    "Pocket",
    "Bamboo",
    "Cotton",
    "Vintage",
    "Compact",
    "Running",
    "Shoes",
    "Mug",
    "Notebook",
    "Scarf",
    "Kettle",
    "Backpack",
    "Jacket",
    "Headphones",
    "Novel",
    "Blender",
    "Pillow",
    "Candle",
    "Gloves",
    "Charger",
]

_FALLBACK_TEMPLATE = (
    "A user clicked the following items in this order (each line is Title_ItemID):\n{items}\n"
    "Judging from the user's long term interests, name one item this user would be interested in. "
    "Output only the item's name, with no explanation."
)


def load_titles(n_synthetic: int = 300) -> tuple[list[tuple[str, str]], str]:
    """(item_id, title) pairs from the demo catalogue if present, else synthetic titles."""
    demo = Path(__file__).resolve().parents[1] / "llm4sbr_adapter" / "demo" / "demo_items.tsv"
    if demo.is_file():
        rows = []
        with open(demo, encoding="utf-8") as f:
            header = f.readline().rstrip("\n").split("\t")
            id_col, title_col = header.index("item_id"), header.index("title")
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) > max(id_col, title_col):
                    rows.append((parts[id_col], parts[title_col]))
        if rows:
            return rows, f"demo catalogue {demo.name} ({len(rows)} items)"
    rng = random.Random(1)
    rows = [(str(1000 + i), " ".join(rng.sample(_SYNTH_WORDS, 3))) for i in range(n_synthetic)]
    return rows, f"synthetic titles ({len(rows)} items)"


def make_prompts(n: int, min_items: int, max_items: int, seed: int) -> tuple[list[str], str]:
    """``n`` session prompts listing ``min_items..max_items`` numbered ``Title_ItemID`` lines."""
    items, source = load_titles()
    try:
        from llm4sbr_adapter.offline.prompts import DEFAULT_PERSPECTIVES, render_prompt

        def render(lines):
            return render_prompt(DEFAULT_PERSPECTIVES[0], lines)
    except ImportError:

        def render(lines):
            return _FALLBACK_TEMPLATE.format(items="\n".join(f"{i}. {x}" for i, x in enumerate(lines, 1)))

    rng = random.Random(seed)
    prompts = []
    for _ in range(n):
        k = rng.randint(min_items, max_items)
        chosen = rng.sample(items, min(k, len(items)))
        prompts.append(render([f"{title}_{iid}" for iid, title in chosen]))
    return prompts, source


def matmul_flops(m: int, k: int, n: int, repeats: int = 5) -> float:
    """Best-of-``repeats`` float32 FLOP/s of ``[m, k] @ [k, n]`` with torch on this machine."""
    import torch

    a = torch.randn(m, k, dtype=torch.float32)
    b = torch.randn(k, n, dtype=torch.float32)
    torch.matmul(a, b)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * m * k * n / best


def padded_tokens(lengths: list[int], batch_size: int) -> int:
    """Prompt positions processed by batched prefill (length-sorted batches padded to their longest)."""
    order = sorted(lengths, reverse=True)
    return sum(
        max(order[i : i + batch_size]) * len(order[i : i + batch_size]) for i in range(0, len(order), batch_size)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--model",
        default="default",
        help='LLM spec for make_backend: "default" (embedded Qwen2.5-Coder-0.5B GGUF) or '
        '"hf:<folder or .gguf>" (default: %(default)s)',
    )
    parser.add_argument("--n-prompts", type=int, default=16, help="number of prompts answered by each method")
    parser.add_argument("--batch-size", type=int, default=8, help="prompts per batch in the batched run")
    parser.add_argument("--max-new-tokens", type=int, default=32, help="generated tokens per prompt at most")
    parser.add_argument("--min-items", type=int, default=10, help="fewest Title_ItemID lines in a prompt")
    parser.add_argument("--max-items", type=int, default=20, help="most Title_ItemID lines in a prompt")
    parser.add_argument("--seed", type=int, default=0, help="seed of the prompt sampler")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = torch default)")
    parser.add_argument("--device", default="cpu", help='"cpu" or "cuda" (default: %(default)s)')
    args = parser.parse_args(argv)

    import torch

    from llm4sbr_adapter.offline.llm import GenerationConfig, make_backend

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    prompts, source = make_prompts(args.n_prompts, args.min_items, args.max_items, args.seed)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs "
        f"(load average {load:.1f}), device {args.device}"
    )
    print(f"prompts: {len(prompts)} from {source}, {args.min_items}-{args.max_items} items each")

    t0 = time.perf_counter()
    backend = make_backend(args.model, device=args.device, batch_size=args.batch_size)
    print(
        f"model: {backend.model_id}\n  load {time.perf_counter() - t0:.1f} s, "
        f"{backend.num_parameters / 1e6:.0f} M parameters"
    )

    cfg = GenerationConfig(max_new_tokens=args.max_new_tokens)
    lengths = [len(x) for x in backend.encode_prompts(prompts)]
    n_prompt_tokens = sum(lengths)
    n_padded = padded_tokens(lengths, args.batch_size)
    print(
        f"prompt tokens: total {n_prompt_tokens}, mean {statistics.mean(lengths):.0f}, "
        f"min {min(lengths)}, max {max(lengths)}; batched prefill positions incl. padding {n_padded} "
        f"(+{100 * (n_padded / n_prompt_tokens - 1):.1f} %)"
    )

    backend.generate_naive(prompts[:1], GenerationConfig(max_new_tokens=2))  # warm-up
    cfg_model = backend.model.config
    hidden = int(getattr(cfg_model, "hidden_size", 896))
    inter = int(getattr(cfg_model, "intermediate_size", 4 * hidden))
    peak_before = matmul_flops(512, hidden, inter)

    # The machine is shared, so the load drifts: rather than timing all-naive then all-batched, split
    # the prompts into the batches generate() would form (longest first) and time both methods on each
    # batch back to back, alternating which goes first. generate() on one batch's prompts runs exactly
    # that batch, so the batched total equals one generate() call over all prompts.
    order = sorted(range(len(prompts)), key=lambda i: (-lengths[i], i))
    methods = ["naive", "batched"]
    answers = {m: [""] * len(prompts) for m in methods}
    seconds = {m: 0.0 for m in methods}

    def run(method: str, chunk: list[str]) -> list[str]:
        if method == "naive":
            return backend.generate_naive(chunk, cfg)
        return backend.generate(chunk, cfg)

    for b, start in enumerate(range(0, len(order), args.batch_size)):
        idx = order[start : start + args.batch_size]
        chunk = [prompts[i] for i in idx]
        for method in methods if b % 2 == 0 else methods[::-1]:
            t0 = time.perf_counter()
            got = run(method, chunk)
            seconds[method] += time.perf_counter() - t0
            for i, a in zip(idx, got, strict=True):
                answers[method][i] = a
        print(
            f"  batch {b + 1}: {len(chunk)} prompts done ("
            + ", ".join(f"{m} {seconds[m]:.1f} s" for m in methods)
            + " so far)",
            flush=True,
        )
    naive = answers["naive"]
    t_naive, t_batched = seconds["naive"], seconds["batched"]

    new_tokens = sum(len(backend.tokenizer(a, add_special_tokens=False)["input_ids"]) for a in naive)
    embed = backend.model.get_input_embeddings().weight.numel()
    flops_per_token = 2.0 * (backend.num_parameters - embed)  # the embedding lookup does no matmul work
    peak_after = matmul_flops(512, hidden, inter)
    peak = max(peak_before, peak_after)

    print()
    for m in methods[1:]:
        mism = [i for i, (a, b) in enumerate(zip(naive, answers[m], strict=True)) if a != b]
        print(f"answers identical, naive vs {m}: {len(prompts) - len(mism)}/{len(prompts)}")
        for i in mism[:5]:
            print(f"  mismatch #{i}: naive={naive[i]!r}\n  {'':13}{m}={answers[m][i]!r}")
    print(f"example answer: {naive[0]!r}")
    print(f"generated tokens (naive answers): {new_tokens} ({new_tokens / len(prompts):.1f} per prompt)")

    print(
        f"\nfloat32 matmul [512,{hidden}]x[{hidden},{inter}]: {peak / 1e9:.1f} GFLOP/s (best of before "
        f"{peak_before / 1e9:.1f} / after {peak_after / 1e9:.1f}) "
        f"(model FLOPs/token ~ 2 x {(backend.num_parameters - embed) / 1e6:.0f} M non-embedding params)"
    )
    print(
        f"{'method':<26}{'seconds':>9}{'prompts/s':>11}{'prompt tok/s':>14}{'all tok/s':>11}"
        f"{'% matmul (prompt)':>19}{'% matmul (all)':>16}"
    )
    labels = {"naive": "naive (1 at a time)", "batched": f"batched (bs={args.batch_size}, sorted)"}
    for name, t in ((labels[m], seconds[m]) for m in methods):
        ptok = n_prompt_tokens / t
        atok = (n_prompt_tokens + new_tokens) / t
        print(
            f"{name:<26}{t:9.1f}{len(prompts) / t:11.3f}{ptok:14.0f}{atok:11.0f}"
            f"{100 * ptok * flops_per_token / peak:18.1f}%{100 * atok * flops_per_token / peak:15.1f}%"
        )
    print(f"\nspeed-up batched / naive: {t_naive / t_batched:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
