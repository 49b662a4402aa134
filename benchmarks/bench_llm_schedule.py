"""Benchmark: today's prompts and order vs the paper's perspectives asked in prefix order, side by side.

Two schedules answer the same rows with one loaded model, in one process:

* ``old``: perspectives ``long,short_last5`` (the short view lists only the last 5 items), asked by
  the answer loop in the builder's order (every row's long prompt, then every row's short one), each
  prompt read in full (length-sorted batches, no shared key/value cache): the transformers backend
  before this change;
* ``new``: the default perspectives ``long,short`` (one listing, the qualifier after it), asked in the
  answer loop's sorted order (a row's two views back to back, a user's prefix rows side by side),
  shared openings read once (the transformers backend's prefix groups).

Rows are a fixed seeded sample: ML-100K sessions (clicks split at 10-minute gaps) and Amazon Beauty
prefix-augmented rows (every prefix of randomly drawn users' histories, as the paper's protocol makes
them, the last user's chain cut at ``--rows``).
For each it prints prompt tokens actually evaluated per row (real tokens and padded positions, from
a spy on the model's forward calls), rows/s, the two schedules' ratio, how many answers agree where
the prompt text is the same in both (the long view), and the prompt tokens/s as a fraction of what
a float32 matmul of the model's shapes reaches on this machine in the same run (the machine's limit).
With ``llamacpp`` among ``--backends`` (needs ``pip install llama-cpp-python``), the same two
schedules are answered by the llama.cpp backend on the same GGUF file, one prompt at a time. llama.cpp
keeps the previous prompt's key/value cache and reads only what follows the shared prefix, and it
was already asked in sorted order before, so for it ``old`` and ``new`` differ only by the
perspectives. Prompt tokens evaluated are counted from its ``eval`` calls; its limit is the same
float32 matmul (its quantised kernels do the same multiply-adds per token).

With ``--parallel N`` the llama.cpp backend instead answers the ``new`` prompts two ways, side by side:
``one`` (one prompt at a time, as today) and ``batched`` (``n_parallel=N``: N prompts decoded at once in
one context, see ``offline/llm/parallel_decode.py``). Each round also measures the reading rate: prompt
tokens/s of whole prompts evaluated in one batch each from an empty cache. A schedule's limit is the
rows/s that rate gives for the tokens it evaluates per row (prompt tokens read and answer tokens fed
back); rows/s is reported as a fraction of it, with the number of identical answers.

Example:
    python benchmarks/bench_llm_schedule.py --data ../shared/data --rows 10 --threads 2
    python benchmarks/bench_llm_schedule.py --data ../shared/data --rows 40 --threads 2 --backends llamacpp
    python benchmarks/bench_llm_schedule.py --data ../shared/data --rows 40 --threads 2 --backends llamacpp \
        --datasets beauty --parallel 8 --batch-size 32 --rounds 2
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

# the machine's limit is measured exactly as bench_llm.py measures it (this folder is on sys.path when run)
from bench_llm import matmul_flops

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SCHEDULES = {"old": "long,short_last5", "new": "long,short"}


def sample_rows(data: Path, dataset: str, n_rows: int, seed: int) -> tuple[list[list[str]], dict]:
    """``n_rows`` item listings (original ids, oldest first) and the titles."""
    from llm4sbr_adapter.experiments.data.raw_data import augmented_rows, read_beauty, read_movielens, split_sessions

    rng = random.Random(seed)
    if dataset == "ml-100k":
        raw = read_movielens(data / "ml-100k")
        sessions = [s for s in split_sessions(raw.users, raw.items, raw.times, gap=600) if len(s.items) >= 2]
        return [s.items for s in rng.sample(sessions, n_rows)], raw.titles
    raw = read_beauty(data / "beauty")
    histories = split_sessions(raw.users, raw.items, raw.times, gap=10**12)  # one session per user
    rows: list[list[str]] = []
    for s in rng.sample(histories, len(histories)):  # random users, each with all its prefix rows (a chain)
        rows += [r.inputs for r in augmented_rows([s])]
        if len(rows) >= n_rows:
            break
    return rows[:n_rows], raw.titles


def render(rows: list[list[str]], titles: dict, spec: str) -> tuple[list[str], list[str]]:
    """(prompts in the builder's order: every row's first perspective, then the next, ..., their names)."""
    from llm4sbr_adapter.offline.prompts import named_perspectives, render_prompt

    persp = named_perspectives(spec)
    lines = [[f"{titles.get(i, i)}_{i}" for i in items] for items in rows]
    return [render_prompt(p, ln) for p in persp for ln in lines], [p.name for p in persp for _ in lines]


class ForwardSpy:
    """Counts prompt tokens (real, and positions incl. padding) in the model's prompt-reading forward calls."""

    def __init__(self, backend) -> None:
        self.backend, self.real, self.positions, self.first = backend, 0, 0, False
        model, generate_from = backend.model, backend._generate_ids_from
        forward = model.forward

        def spy(*args, **kwargs):
            cache = kwargs.get(backend._cache_kwarg)
            if self.first or cache is None or cache.get_seq_length() == 0:  # a prefill, or generate's first step
                mask = kwargs["attention_mask"]
                width = kwargs["input_ids"].shape[1]
                self.real += int(mask[:, -width:].sum())
                self.positions += int(kwargs["input_ids"].numel())
                self.first = False
            return forward(*args, **kwargs)

        def flagged(*args, **kwargs):
            self.first = True
            return generate_from(*args, **kwargs)

        model.forward, backend._generate_ids_from = spy, flagged

    def before_run(self, schedule: str) -> None:
        """Zero the counts; ``old`` runs as the backend did before (no shared openings, builder's order)."""
        self.real = self.positions = 0
        self.backend.share_prefix = self.backend.reuses_prompt_prefix = schedule == "new"

    def counts(self) -> dict:
        return {"real": self.real, "positions": self.positions}


class EvalSpy:
    """Counts the prompt tokens llama.cpp evaluates: the first ``eval`` call of each chat completion
    holds the prompt's tokens after the prefix kept from the previous prompt (later calls are answer
    tokens, one at a time)."""

    def __init__(self, backend) -> None:
        self.real = self.answer = 0
        self.first = False
        self.llm = llm = backend.llm
        evaluate, complete = llm.eval, llm.create_chat_completion

        def spy(tokens):
            if self.first:
                self.real += len(tokens)
                self.first = False
            else:
                self.answer += len(tokens)
            return evaluate(tokens)

        def flagged(*args, **kwargs):
            self.first = True
            return complete(*args, **kwargs)

        llm.eval, llm.create_chat_completion = spy, flagged

    def before_run(self, schedule: str) -> None:
        """Zero the counts and empty llama.cpp's key/value cache, so no run starts from another's last prompt."""
        self.real = self.answer = 0
        self.llm.reset()

    def counts(self) -> dict:
        return {"real": self.real, "positions": self.real, "answer": self.answer}


class ParallelSpy:
    """Switches the llama.cpp backend between one prompt at a time (``one``) and ``n_parallel`` prompts at
    once (``batched``), each run from empty key/value memory, and counts the tokens each evaluates."""

    def __init__(self, backend, n_parallel: int, evals: EvalSpy) -> None:
        self.backend, self.n_parallel, self.evals = backend, n_parallel, evals
        self.batched = False

    def before_run(self, schedule: str) -> None:
        from llm4sbr_adapter.offline.llm.parallel_decode import DecodeCounts, ParallelDecoder

        self.evals.before_run(schedule)
        self.batched = schedule == "batched"
        backend = self.backend
        backend.n_parallel = self.n_parallel if self.batched else 1
        backend.decode_counts = DecodeCounts()
        if backend.sequences is not None:  # forget what the previous run left in the sequences
            for seq in range(backend.sequences.n_seq):
                backend.sequences.forget(seq)
            backend.decoder = ParallelDecoder(backend.sequences)

    def counts(self) -> dict:
        if not self.batched:
            return self.evals.counts()
        c = self.backend.decode_counts
        return {"real": c.prompt, "positions": c.prompt, "answer": c.answer}


def reading_rate(backend, prompts: list[str], n_prompts: int = 6) -> tuple[int, float, float]:
    """(tokens, seconds, CPU seconds of this process) of reading the first ``n_prompts`` prompts whole, each
    in one batch from an empty cache: the rate at which this CPU reads prompt tokens."""
    from llm4sbr_adapter.offline.llm.llamacpp_sequences import chat_formatter, chat_tokens

    llm = backend.llm
    formatter = chat_formatter(llm)
    tokens, seconds, cpu = 0, 0.0, 0.0
    for prompt in prompts[:n_prompts]:
        ids = chat_tokens(llm, formatter, prompt)
        llm.reset()
        t0, c0 = time.perf_counter(), time.process_time()
        type(llm).eval(llm, ids)  # Llama.eval itself, not the EvalSpy put on this instance
        seconds, cpu = seconds + time.perf_counter() - t0, cpu + time.process_time() - c0
        tokens += len(ids)
    llm.reset()
    return tokens, seconds, cpu


def run_schedules(
    backend, spy, schedules: dict, n_rows: int, cfg, rounds: int, batch_size: int, each_round=None
) -> dict:
    """Answer each schedule through the answer loop (no cache) ``rounds`` times, alternating which goes
    first; ``each_round()``, if given, runs after each round."""
    from llm4sbr_adapter.offline.llm.cache import answer_prompts

    out: dict[str, dict] = {name: {"seconds": 0.0, "cpu": 0.0, "rounds": rounds} for name in schedules}
    for r in range(rounds):
        for name in list(schedules) if r % 2 == 0 else list(schedules)[::-1]:
            prompts, _ = schedules[name]
            spy.before_run(name)
            t0, c0 = time.perf_counter(), time.process_time()
            result = answer_prompts(backend, prompts, cfg, None, batch_size=batch_size, progress=False)
            out[name]["seconds"] += time.perf_counter() - t0
            out[name]["cpu"] += time.process_time() - c0
            print(f"  round {r + 1} {name}: {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
            out[name]["answers"] = result.answers
            out[name].update(spy.counts())
        if each_round is not None:
            each_round()
    for name in out:
        out[name]["rows_per_s"] = n_rows * rounds / out[name]["seconds"]
    return out


def report(
    dataset: str, n_rows: int, schedules: dict, res: dict, flops_per_token: float, peak: float, backend: str
) -> None:
    print(f"\n{dataset}: {n_rows} rows, {backend}")
    print(
        f"{'schedule':<10}{'tok/row real':>14}{'positions/row':>15}{'answer tok/row':>16}{'rows/s':>9}"
        f"{'prompt tok/s':>14}{'% limit':>9}"
    )
    for name, r in res.items():
        tok_s = r["real"] * r["rounds"] / r["seconds"]
        answer = f"{r['answer'] / n_rows:16.1f}" if "answer" in r else f"{'-':>16}"  # counted for llama.cpp only
        print(
            f"{name:<10}{r['real'] / n_rows:14.1f}{r['positions'] / n_rows:15.1f}{answer}{r['rows_per_s']:9.3f}"
            f"{tok_s:14.1f}{100 * tok_s * flops_per_token / peak:8.1f}%"
        )
    old, new = res["old"], res["new"]
    print(
        f"new / old: {new['rows_per_s'] / old['rows_per_s']:.2f}x rows/s, "
        f"{old['real'] / max(new['real'], 1):.2f}x fewer prompt tokens evaluated"
    )
    pairs = zip(_long(schedules["old"], old), _long(schedules["new"], new), strict=True)
    same = [a == b for (_, _, a), (_, _, b) in pairs]
    print(f"identical answers where the prompt is identical (long view): {sum(same)}/{len(same)}")


def compare_parallel(backend, evals: EvalSpy, dataset: str, n_rows: int, prompts: tuple, cfg, args) -> None:
    """``one`` vs ``batched`` on the same prompts, alternating rounds, the reading rate measured each round."""
    spy = ParallelSpy(backend, args.parallel, evals)
    rate = [0.0, 0.0, 0.0]  # tokens, seconds, CPU seconds

    def measure() -> None:
        for k, value in enumerate(reading_rate(backend, prompts[0])):
            rate[k] += value

    schedules = {"one": prompts, "batched": prompts}
    res = run_schedules(backend, spy, schedules, n_rows, cfg, args.rounds, args.batch_size, measure)
    print(f"\n{dataset}: {n_rows} rows, llama.cpp, one prompt at a time vs {args.parallel} at once")
    print(
        f"reading rate: {rate[0] / rate[1]:.1f} prompt tokens/s, {rate[0] / rate[2]:.1f} per CPU-second "
        f"(whole prompts, one batch each, {rate[0]:.0f} tokens in all)"
    )
    head = f"{'schedule':<10}{'prompt tok/row':>16}{'answer tok/row':>16}"
    print(f"{head}{'rows/s':>9}{'% limit':>9}{'rows/CPU-s':>12}{'% limit':>9}")
    for name, r in res.items():
        tok_row = (r["real"] + r["answer"]) / n_rows
        per_cpu = n_rows * r["rounds"] / r["cpu"]
        print(
            f"{name:<10}{r['real'] / n_rows:16.1f}{r['answer'] / n_rows:16.1f}{r['rows_per_s']:9.3f}"
            f"{100 * r['rows_per_s'] * tok_row * rate[1] / rate[0]:8.1f}%"
            f"{per_cpu:12.3f}{100 * per_cpu * tok_row * rate[2] / rate[0]:8.1f}%"
        )
        r["per_cpu"] = per_cpu
    print(
        f"batched / one: {res['batched']['rows_per_s'] / res['one']['rows_per_s']:.2f}x rows/s, "
        f"{res['batched']['per_cpu'] / res['one']['per_cpu']:.2f}x rows per CPU-second"
    )
    one, batched = res["one"]["answers"], res["batched"]["answers"]
    same = sum(a == b for a, b in zip(one, batched, strict=True))
    print(f"identical answers (same prompts): {same}/{len(one)}")
    for p, a, b in zip(prompts[0], one, batched, strict=True):
        if a != b:
            print(f"  differs: {a!r} vs {b!r} (prompt ending {p[-60:]!r})")


def _long(schedule: tuple[list[str], list[str]], result: dict) -> list[tuple[str, str, str]]:
    prompts, names = schedule
    return sorted((p, n, a) for p, n, a in zip(prompts, names, result["answers"], strict=True) if n == "long")


def load_backends(names: list[str], model: str, batch_size: int, threads: int) -> dict:
    """{backend name: (backend, spy, flops per prompt token, hidden size, intermediate size)}."""
    from llm4sbr_adapter.offline.llm import make_backend

    out = {}
    if "transformers" in names:
        backend = make_backend(model, batch_size=batch_size)
        config = backend.model.config
        embed = backend.model.get_input_embeddings().weight.numel()
        flops = 2.0 * (backend.num_parameters - embed)
        out["transformers"] = (backend, ForwardSpy(backend), flops, config.hidden_size, config.intermediate_size)
        print(f"transformers: {backend.model_id}, {backend.num_parameters / 1e6:.0f} M parameters")
    if "llamacpp" in names:
        spec = model if model.startswith("llamacpp:") else f"llamacpp:{model}"  # "default" or a .gguf path
        backend = make_backend(spec, n_threads=threads or None)
        llm = backend.llm
        arch = llm.metadata["general.architecture"]
        hidden, inter = int(llm.n_embd()), int(llm.metadata[f"{arch}.feed_forward_length"])
        flops = 2.0 * (llm._model.n_params() - llm.n_vocab() * hidden)  # the token embedding is a lookup
        out["llamacpp"] = (backend, EvalSpy(backend), flops, hidden, inter)
        print(f"llama.cpp: {backend.model_id}, {backend.n_threads} threads")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="folder holding ml-100k/ and beauty/ (../shared/data)")
    parser.add_argument("--datasets", default="ml-100k,beauty", help="comma-separated (default: %(default)s)")
    parser.add_argument("--rows", type=int, default=10, help="rows per dataset (default %(default)s)")
    parser.add_argument(
        "--model", default="default", help="LLM spec for make_backend, or a .gguf for llamacpp (default: %(default)s)"
    )
    parser.add_argument(
        "--backends", default="transformers", help="comma-separated: transformers, llamacpp (default: %(default)s)"
    )
    parser.add_argument("--batch-size", type=int, default=8, help="prompts per batch (default %(default)s)")
    parser.add_argument("--max-new-tokens", type=int, default=16, help="answer length cap (default %(default)s)")
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds per schedule (default 1)")
    parser.add_argument("--threads", type=int, default=0, help="torch / llama.cpp threads (0 = their default)")
    parser.add_argument("--seed", type=int, default=0, help="row sample seed (default 0)")
    parser.add_argument(
        "--parallel", type=int, default=0, help="llamacpp: compare one prompt at a time with N at once (0 = off)"
    )
    args = parser.parse_args(argv)
    names = args.backends.split(",")
    if unknown := set(names) - {"transformers", "llamacpp"}:
        parser.error(f"--backends: unknown {sorted(unknown)}")

    import torch

    from llm4sbr_adapter.offline.llm import GenerationConfig

    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f}")
    backends = load_backends(names, args.model, args.batch_size, args.threads)
    cfg = GenerationConfig(max_new_tokens=args.max_new_tokens)
    for dataset in args.datasets.split(","):
        rows, titles = sample_rows(Path(args.data), dataset, args.rows, args.seed)
        schedules = {name: render(rows, titles, spec) for name, spec in SCHEDULES.items()}
        for name, (backend, spy, flops_per_token, hidden, inter) in backends.items():
            if name == "llamacpp" and args.parallel:
                compare_parallel(backend, spy, dataset, len(rows), schedules["new"], cfg, args)
                continue
            peak = matmul_flops(512, hidden, inter)
            res = run_schedules(backend, spy, schedules, len(rows), cfg, args.rounds, args.batch_size)
            peak = max(peak, matmul_flops(512, hidden, inter))
            print(f"limit: float32 matmul [512,{hidden}]x[{hidden},{inter}] {peak / 1e9:.1f} GFLOP/s (best of 2)")
            report(dataset, len(rows), schedules, res, flops_per_token, peak, name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
