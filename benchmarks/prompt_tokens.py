"""Prompt tokens per row of exported prompts, counted with the default model's own tokenizer.

    python -m llm4sbr_adapter.build_store --sessions S --items I --perspectives ... --dry-run --export-prompts p.jsonl
    python benchmarks/prompt_tokens.py p.jsonl [q.jsonl ...]

For each file: rows, prompt tokens per row with every prompt counted whole, and the tokens a backend that
reuses a shared prompt prefix reads (each row's prompts share their listing: the second prompt costs only
the tokens after the longest common prefix of the two). The chat template adds the same few tokens to
every prompt (its fixed opening is read once per context by llama.cpp) and is not counted here.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import llama_cpp

from llm4sbr_adapter.offline.llm.default_model import default_llm_path


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def count(path: Path, vocab: llama_cpp.Llama) -> tuple[int, float, float]:
    """Rows, whole tokens per row, and tokens per row read with the shared prefix read once."""
    rows: dict[str, list[list[int]]] = defaultdict(list)
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            rec = json.loads(line)
            rows[str(rec["session_id"])].append(vocab.tokenize(rec["prompt"].encode("utf-8"), add_bos=False))
    whole = read = 0
    for prompts in rows.values():
        whole += sum(len(p) for p in prompts)
        read += len(prompts[0]) + sum(len(p) - _common_prefix(prompts[0], p) for p in prompts[1:])
    n = max(len(rows), 1)
    return len(rows), whole / n, read / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("prompts", nargs="+", type=Path, help="JSONL files written by --export-prompts")
    args = parser.parse_args()
    vocab = llama_cpp.Llama(str(default_llm_path()), vocab_only=True, verbose=False)
    print("| prompts | rows | tokens per row (whole) | tokens per row (shared listing read once) |")
    print("|---|---:|---:|---:|")
    for path in args.prompts:
        rows, whole, read = count(path, vocab)
        print(f"| {path.name} | {rows} | {whole:.1f} | {read:.1f} |")


if __name__ == "__main__":
    main()
