"""Command line for stage one: ``python -m llm4sbr_adapter.build_store``.

Run with no arguments (or ``--demo``) to build a store from the embedded demo data with the default
LLM and text encoder; ``--help`` explains every flag, ``merge`` joins shard stores.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from .errors import CliParser, add_log_level, run_cli
from .offline.inputs.clicks import looks_like_click_log, read_click_sessions
from .offline.inputs.columns import add_click_log_flags
from .offline.inputs.sessions import PICKLE_WARNING, read_catalogue, read_sessions
from .offline.pipeline import DEFAULT_TOP_F, EMPTY_POLICIES, build_intent_store, default_cache_path, parse_shard
from .offline.prompts import DEFAULT_MAX_ITEMS, PromptError, named_perspectives
from .store import BUILD_DTYPE

logger = logging.getLogger("llm4sbr_adapter.build_store")

DEMO_OUTPUT = "llm4sbr_demo_intents.safetensors"

DESCRIPTION = f"""\
Stage one of LLM4SBR: ask an LLM, for every session and every perspective (default: long term and
short term), to name one item the user is interested in; embed each answer with a text encoder,
snap it to the catalogue (top-f nearest titles, softmax-weighted) and write an intent store
(safetensors) for training.

With no arguments (or --demo) it builds the embedded demo (22 sessions, 100 items) with the default
LLM and encoder and writes ./llm4sbr_demo_intents.safetensors.

Security: {PICKLE_WARNING}. --sessions unpickles only a .pkl/.pickle file, a .txt
file that starts with a pickle header (SR-GNN's train.txt/test.txt) or a file given with
--sessions-format pickle; any other file that starts like a pickle is refused.

Errors are one line, "error: <message>" on stderr: exit status 2 for a usage error, 1 for a failure
(--log-level debug also prints the traceback).
"""

EPILOG = """\
subcommand:
  merge --output OUT SHARD [SHARD ...]
                        join shard stores built with --shard K/N (same settings) into one store;
                        see `python -m llm4sbr_adapter.build_store merge --help`.

examples:
  python -m llm4sbr_adapter.build_store                       # the demo
  python -m llm4sbr_adapter.build_store --sessions train.txt --items items.tsv --output train_intents.safetensors
  python -m llm4sbr_adapter.build_store ... --llm openai:http://gpu:8000/v1#Qwen/Qwen2.5-7B-Instruct --batch-size 64
  python -m llm4sbr_adapter.build_store --sessions clicks.csv --items items.csv --output intents.safetensors  # a log
  python -m llm4sbr_adapter.build_store ... --shard 0/4 --output part0.safetensors   # then: merge
  python -m llm4sbr_adapter.build_store ... --dry-run --export-prompts prompts.jsonl
"""


def demo_paths() -> tuple[Path, Path]:
    """Paths of the embedded demo files (sessions, items)."""
    root = resources.files("llm4sbr_adapter") / "demo"
    return Path(str(root / "demo_sessions.tsv")), Path(str(root / "demo_items.tsv"))


def _positive_seconds(text: str) -> float:
    """argparse type of ``--request-timeout``: a number of seconds > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not 0 < value < float("inf"):  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds > 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = CliParser(
        prog="python -m llm4sbr_adapter.build_store",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    io = p.add_argument_group("inputs and output")
    io.add_argument(
        "--sessions",
        metavar="PATH",
        help="sessions file: SR-GNN pickle (train.txt/test.txt, session id = row index; only from a "
        "trusted source), TSV/CSV 'session_id<TAB>space-separated item ids' (header optional), "
        'or JSONL {"session_id":..., "items":[...]}.',
    )
    io.add_argument(
        "--sessions-format",
        default="auto",
        choices=["auto", "pickle", "tsv", "csv", "jsonl", "clicks"],
        help="format of --sessions (default: auto, by extension; a pickle header is trusted only in "
        ".pkl/.pickle/.txt files, other pickles need --sessions-format pickle; a CSV/TSV whose header names "
        "an item and a time column, or a .parquet file, is a click log: see --sessions-format clicks).",
    )
    io.add_argument(
        "--sessions-encoding",
        default="utf-8",
        metavar="ENCODING",
        help="text encoding of a TSV/CSV/JSONL --sessions file (default utf-8).",
    )
    io.add_argument(
        "--items",
        metavar="PATH",
        help="item catalogue: TSV/CSV/'|'-separated 'item_id<sep>title[<sep>...]' (extra columns "
        'ignored, header detected) or JSONL {"item_id":..., "title":...}.',
    )
    io.add_argument(
        "--items-encoding",
        default="utf-8",
        help="text encoding of --items (default utf-8; latin-1 for MovieLens u.item).",
    )
    io.add_argument(
        "--output", metavar="PATH", help="intent store to write (.safetensors); required unless --dry-run or --demo."
    )
    io.add_argument(
        "--demo",
        action="store_true",
        help=f"use the embedded demo sessions and items; output defaults to ./{DEMO_OUTPUT}.",
    )

    _add_click_log_group(p)

    m = p.add_argument_group("models")
    m.add_argument(
        "--llm",
        default="default",
        metavar="SPEC",
        help="LLM backend: 'default' (embedded Qwen2.5-Coder-0.5B-Instruct GGUF, CPU), 'hf:PATH' "
        "(a Hugging Face folder or a .gguf file, run by transformers in float32), 'llamacpp:PATH.gguf' or "
        "'llamacpp:default' (the GGUF run quantised by llama.cpp, several times faster on a CPU; "
        "needs pip install llama-cpp-python), 'openai:URL#MODEL' (an OpenAI-compatible "
        "server such as vLLM, e.g. openai:http://localhost:8000/v1#Qwen/Qwen2.5-7B-Instruct), "
        "'replay:JSONL' (answers produced elsewhere), or 'py:MODULE:FACTORY' (a function "
        "returning an LLMBackend). Default: default.",
    )
    m.add_argument(
        "--encoder",
        metavar="PATH",
        default=None,
        help="text encoder: a local Hugging Face folder (mean pooling); default all-MiniLM-L6-v2 (384-d).",
    )
    m.add_argument(
        "--device",
        default="cpu",
        help="torch device for the local LLM and the encoder, e.g. cpu or cuda:0 (default cpu).",
    )
    m.add_argument(
        "--threads",
        type=int,
        default=0,
        help="CPU threads for a local LLM (llama.cpp or transformers) and the encoder; 0 = all cores "
        "(default). Lower it to leave cores to other jobs.",
    )
    m.add_argument(
        "--max-new-tokens",
        type=int,
        default=32,
        help="upper bound on generated tokens per answer (default 32; answers are one item name).",
    )
    m.add_argument(
        "--temperature", type=float, default=0.0, help="sampling temperature; 0 = greedy, deterministic (default 0)."
    )
    m.add_argument(
        "--batch-size",
        type=int,
        default=8,
        help="prompts per LLM call and per answer-cache commit (default 8; 32-128 for a GPU server).",
    )
    m.add_argument(
        "--request-timeout",
        type=_positive_seconds,
        default=None,
        metavar="SECONDS",
        help="seconds each HTTP request to an openai: server may take before it is retried (default 60; must be > 0).",
    )

    pr = p.add_argument_group("prompts")
    pr.add_argument(
        "--perspectives",
        default="long,short",
        metavar="NAMES",
        help="built-in perspectives, comma-separated: long, short (the same listing as long, qualifier "
        "'short term', as in the paper) or short_last5 (stored as short: only the last 5 items). "
        "Default: long,short.",
    )
    pr.add_argument(
        "--perspectives-file",
        metavar="JSON",
        help="JSON list of {name, qualifier, template, last_n} replacing --perspectives; templates use "
        "{items} and {qualifier}.",
    )
    pr.add_argument(
        "--max-items",
        type=int,
        default=DEFAULT_MAX_ITEMS,
        help=f"keep only a session's most recent N items in prompts (default {DEFAULT_MAX_ITEMS}).",
    )
    pr.add_argument(
        "--on-missing-title",
        default="error",
        choices=["error", "skip_item", "id_only"],
        help="a session item without a catalogue title: stop with an error naming it (default), "
        "leave it out of the prompt, or show its bare id.",
    )
    pr.add_argument(
        "--on-empty-session",
        default="error",
        choices=["error", "skip"],
        help="a session with no items: stop with an error (default) or skip it.",
    )
    pr.add_argument(
        "--export-prompts",
        metavar="JSONL",
        help="also write every prompt (session_id, perspective, prompt, prompt_sha256) as JSONL, "
        "to answer with an LLM elsewhere and come back with --llm replay:ANSWERS.jsonl.",
    )
    pr.add_argument(
        "--dry-run",
        action="store_true",
        help="render prompts, print a few and the counts, and stop: no LLM is loaded, no store written.",
    )

    loc = p.add_argument_group("localization and store")
    loc.add_argument(
        "--top-f",
        type=int,
        default=DEFAULT_TOP_F,
        help=f"snap each answer to its f most similar catalogue titles (default {DEFAULT_TOP_F}; "
        "0 stores the raw answer embedding).",
    )
    loc.add_argument(
        "--softmax-temperature",
        type=float,
        default=1.0,
        help="temperature of the softmax over the top-f cosines (default 1.0).",
    )
    loc.add_argument(
        "--index",
        default="flat",
        choices=["flat", "hnsw", "ivf"],
        help="FAISS index over the catalogue: exact 'flat' (default) or approximate hnsw / ivf for "
        "very large catalogues.",
    )
    loc.add_argument(
        "--on-empty-answer",
        default="session_mean",
        choices=list(EMPTY_POLICIES),
        help="an answer that is empty after cleaning: use the mean title embedding of the items "
        "the prompt showed (session_mean, default), embed the raw completion (raw), or stop (error).",
    )
    loc.add_argument(
        "--dtype",
        default=BUILD_DTYPE,
        choices=["float16", "float32"],
        help=f"dtype of the stored intent vectors (default {BUILD_DTYPE}: half the disk and memory; training "
        "computes in float32 either way). --dtype float32 keeps full precision.",
    )

    run = p.add_argument_group("caching, sharding, logging")
    run.add_argument(
        "--cache",
        metavar="SQLITE",
        help="answer cache (SQLite); default <output>.answers.sqlite3. Re-running a killed build "
        "with the same cache asks only the prompts not answered yet.",
    )
    run.add_argument(
        "--item-cache-dir",
        metavar="DIR",
        help="folder caching catalogue embeddings (default: llm4sbr_item_cache beside --output).",
    )
    run.add_argument(
        "--shard",
        metavar="K/N",
        help="build only shard K of N (contiguous blocks of sessions, K from 0); join the N "
        "outputs with the merge subcommand.",
    )
    run.add_argument("--no-progress", action="store_true", help="hide progress bars.")
    add_log_level(run, "INFO")
    return p


def _add_click_log_group(p: argparse.ArgumentParser) -> None:
    """Flags of one-click-per-row --sessions files and of the --items header (issue 16)."""
    g = p.add_argument_group(
        "click logs and catalogues",
        "--sessions may be a click log, one click per row (CSV/TSV/Parquet with a header, e.g. "
        "session_id,item_id,timestamp); its clicks are grouped into sessions in time order.",
    )
    add_click_log_flags(g)
    g.add_argument(
        "--clicks-target",
        default="last",
        choices=["last", "none"],
        help="click log: hold each session's last click out of its prompt as the target (last, default: the "
        "prompt never shows the item a next-click model predicts), or show every click (none).",
    )
    g.add_argument(
        "--items-header",
        default="auto",
        choices=["auto", "yes", "no"],
        help="does --items start with a header row (default auto: when its id or title field is a common column "
        "name such as item_id, item ID, itemId, id, title or name).",
    )


def build_merge_parser() -> argparse.ArgumentParser:
    p = CliParser(
        prog="python -m llm4sbr_adapter.build_store merge",
        description="Join shard stores (built with --shard K/N and identical settings) into one store. "
        "Fails when settings differ or a session id occurs in two shards.",
    )
    p.add_argument("--output", required=True, metavar="PATH", help="merged store to write.")
    p.add_argument("shards", nargs="+", metavar="SHARD", help="shard stores, in shard order (0/N first).")
    add_log_level(p, "INFO")
    return p


def _merge(argv: Sequence[str]) -> int:
    """``merge`` subcommand; exit status 1 with a one-line error for bad or incomplete shard sets."""
    args = build_merge_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run_cli(lambda: _merge_shards(args), args.log_level)


def _merge_shards(args: argparse.Namespace) -> int:
    """Join the shard stores of ``args`` and print what was written."""
    from .store import IntentStore, merge_stores

    out = merge_stores(args.shards, args.output)
    store = IntentStore.open(out)
    print(
        f"merged {len(args.shards)} shards -> {out} ({store.num_sessions} sessions, perspectives {store.perspectives})"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (1: a failure; usage errors exit with status 2)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "merge":
        return _merge(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    shard = _check_usage(parser, args, demo=args.demo or not argv)
    return run_cli(lambda: _build(args, shard), args.log_level)


def _check_usage(parser: argparse.ArgumentParser, args: argparse.Namespace, demo: bool) -> tuple[int, int] | None:
    """Fill the demo's paths when asked; a missing or malformed flag is a usage error (exit 2). Returns the shard."""
    if demo:
        demo_sessions, demo_items = demo_paths()
        args.sessions = args.sessions or str(demo_sessions)
        args.items = args.items or str(demo_items)
        args.output = args.output or DEMO_OUTPUT
        print(f"demo: sessions {args.sessions}\n      items    {args.items}\n      output   {args.output}")
    if not args.sessions or not args.items:
        parser.error("--sessions and --items are required (or --demo)")
    if not args.output and not args.dry_run:
        parser.error("--output is required unless --dry-run")
    try:
        named_perspectives(args.perspectives)
    except PromptError as err:
        parser.error(f"--perspectives: {err}")
    try:
        return parse_shard(args.shard)
    except ValueError as err:
        parser.error(str(err))


def _build(args: argparse.Namespace, shard: tuple[int, int] | None) -> int:
    """Read the inputs, build (or dry-run) the store and print the summary."""
    from .offline.llm.base import GenerationConfig

    start = time.perf_counter()
    sessions, catalogue = _read_inputs(args)
    read_seconds = time.perf_counter() - start
    report = build_intent_store(
        sessions,
        catalogue,
        args.output,
        llm=args.llm,
        encoder=args.encoder,
        perspectives=args.perspectives_file or named_perspectives(args.perspectives),
        top_f=args.top_f,
        softmax_temperature=args.softmax_temperature,
        max_items=args.max_items,
        generation=GenerationConfig(max_new_tokens=args.max_new_tokens, temperature=args.temperature),
        batch_size=args.batch_size,
        cache_path=args.cache or (default_cache_path(args.output) if args.output else None),
        shard=shard,
        dtype=args.dtype,
        dry_run=args.dry_run,
        index=args.index,
        device=args.device,
        threads=args.threads,
        item_cache_dir=args.item_cache_dir,
        on_missing_title=args.on_missing_title,
        on_empty_answer=args.on_empty_answer,
        export_prompts=args.export_prompts,
        progress=not args.no_progress,
        request_timeout=args.request_timeout,
    )
    report.seconds = {"read": report.seconds.pop("read", 0.0) + read_seconds, **report.seconds}
    if args.dry_run:
        print("\n=== dry run: sample prompts ===")
        for sample in report.sample_prompts[:4]:
            print(f"\n--- session {sample['session_id']!r}, perspective {sample['perspective']!r} ---")
            print(sample["prompt"])
        print()
    print("\n=== summary ===")
    print(report.summary())
    return 0


def _read_inputs(args: argparse.Namespace) -> tuple:
    """The sessions (a click log or a session-per-row file) and the catalogue named by ``args``."""
    fmt = args.sessions_format
    headerless = args.log_columns is not None
    detected = fmt == "auto" and (headerless or looks_like_click_log(args.sessions, args.sessions_encoding))
    if fmt == "clicks" or detected:
        columns = {role: getattr(args, f"{role}_column") for role in ("session", "item", "time", "user")}
        columns["names"] = args.log_columns
        sessions = read_click_sessions(
            args.sessions,
            columns=columns,
            gap=args.gap,
            window=args.window,
            target=args.clicks_target,
            on_empty=args.on_empty_session,
            encoding=args.sessions_encoding,
        )
    else:
        sessions = read_sessions(args.sessions, fmt, on_empty=args.on_empty_session, encoding=args.sessions_encoding)
    header = {"auto": None, "yes": True, "no": False}[args.items_header]
    return sessions, read_catalogue(args.items, encoding=args.items_encoding, header=header)


if __name__ == "__main__":
    sys.exit(main())
