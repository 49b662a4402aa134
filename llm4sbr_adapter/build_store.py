"""Command line for stage one: ``python -m llm4sbr_adapter.build_store``.

Run with no arguments (or ``--demo``) to build a store from the embedded demo data with the default
LLM and text encoder; ``--help`` explains every flag, ``merge`` joins shard stores.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from .config import ConfigError
from .config_cli import add_config_arguments, argument_group, config_from_args, hint_flags
from .errors import CliParser, add_log_level, run_cli
from .offline.config import BuildConfig
from .offline.inputs.ids import PICKLE_WARNING
from .offline.llm.answers_file import export_answers
from .offline.pipeline import build_intent_store
from .offline.stages.read import reads_as_click_log
from .output_paths import check_writes
from .store import IntentStore, merge_stores

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
  answers --cache SQLITE --output ANSWERS.jsonl.gz [--model-id ID]
                        write a cache's answers as a small replay file to commit; rebuild the stores
                        from it without an LLM with --llm replay:ANSWERS.jsonl.gz.

examples:
  python -m llm4sbr_adapter.build_store                       # the demo
  python -m llm4sbr_adapter.build_store --sessions train.txt --items items.tsv --output train_intents.safetensors
  python -m llm4sbr_adapter.build_store ... --batch-size 64 \\
      --llm openai:http://localhost:8000/v1#Qwen/Qwen2.5-7B-Instruct
  python -m llm4sbr_adapter.build_store --sessions clicks.csv --items items.csv --output intents.safetensors  # a log
  python -m llm4sbr_adapter.build_store ... --shard 0/4 --output part0.safetensors   # then: merge
  python -m llm4sbr_adapter.build_store ... --dry-run --export-prompts prompts.jsonl
"""


def demo_paths() -> tuple[Path, Path]:
    """Paths of the embedded demo files (sessions, items)."""
    root = resources.files("llm4sbr_adapter") / "demo"
    return Path(str(root / "demo_sessions.tsv")), Path(str(root / "demo_items.tsv"))


def build_parser() -> argparse.ArgumentParser:
    """The build command line: inputs and output by hand, every build setting generated from :class:`BuildConfig`."""
    p = CliParser(
        prog="python -m llm4sbr_adapter.build_store",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    io = p.add_argument_group("inputs")
    io.add_argument(
        "--sessions",
        metavar="PATH",
        help="sessions file: SR-GNN pickle (train.txt/test.txt, session id = row index; only from a "
        "trusted source), TSV/CSV 'session_id<TAB>space-separated item ids' (header optional), "
        'or JSONL {"session_id":..., "items":[...]}.',
    )
    io.add_argument(
        "--items",
        metavar="PATH",
        help="item catalogue: TSV/CSV/'|'-separated 'item_id<sep>title[<sep>...]' (extra columns "
        'ignored, header detected) or JSONL {"item_id":..., "title":...}.',
    )
    io.add_argument(
        "--output", metavar="PATH", help="intent store to write (.safetensors); required unless --dry-run or --demo."
    )
    io.add_argument(
        "--demo",
        action="store_true",
        help=f"use the embedded demo sessions and items; output defaults to ./{DEMO_OUTPUT}.",
    )
    add_config_arguments(p, BuildConfig)
    argument_group(p, "click logs").description = (
        "--sessions may be a click log, one click per row (CSV/TSV/Parquet with a header, e.g. "
        "session_id,item_id,timestamp); its clicks are grouped into sessions in time order."
    )
    add_log_level(argument_group(p, "caching, sharding, logging"), "WARNING")
    return p


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
    check_writes({"--output": args.output}, {"SHARD": args.shards})
    out = merge_stores(args.shards, args.output)
    store = IntentStore.open(out)
    print(
        f"merged {len(args.shards)} shards -> {out} ({store.num_sessions} sessions, perspectives {store.perspectives})"
    )
    return 0


def build_answers_parser() -> argparse.ArgumentParser:
    p = CliParser(
        prog="python -m llm4sbr_adapter.build_store answers",
        description="Write the answers of an answer cache as gzip-compressed JSONL (prompt_sha256, perspective, "
        "model_id, generation, answer), sorted, byte-identical for the same answers: a file to commit and "
        "to replay with --llm replay:FILE.",
    )
    p.add_argument("--cache", required=True, metavar="SQLITE", help="the answer cache of the builds.")
    p.add_argument("--output", required=True, metavar="PATH", help="file to write (.jsonl.gz, or .jsonl).")
    p.add_argument("--model-id", metavar="ID", help="export this model's answers only (needed when several).")
    add_log_level(p, "INFO")
    return p


def _answers(argv: Sequence[str]) -> int:
    """``answers`` subcommand: export a cache as a replay file."""
    args = build_answers_parser().parse_args(argv)

    def work() -> int:
        check_writes({"--output": args.output}, {"--cache": args.cache})
        path, n = export_answers(args.cache, args.output, model_id=args.model_id)
        print(f"wrote {n} answers to {path}")
        return 0

    return run_cli(work, args.log_level)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (1: a failure; usage errors exit with status 2)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "merge":
        return _merge(argv[1:])
    if argv and argv[0] == "answers":
        return _answers(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = _check_usage(parser, args, demo=args.demo or not argv)
    return run_cli(lambda: _build(args, config), args.log_level, hint_flags(BuildConfig))


def _check_usage(parser: argparse.ArgumentParser, args: argparse.Namespace, demo: bool) -> BuildConfig:
    """Fill the demo's paths when asked; a missing flag or a bad setting is a usage error (exit 2)."""
    try:
        config = config_from_args(BuildConfig, args)
    except ConfigError as err:
        parser.error(str(err))
    if demo:
        demo_sessions, demo_items = demo_paths()
        args.sessions = args.sessions or str(demo_sessions)
        args.items = args.items or str(demo_items)
        args.output = args.output or DEMO_OUTPUT
    if not args.sessions or not args.items:
        parser.error("--sessions and --items are required (or --demo)")
    if not args.output and not config.dry_run:
        parser.error("--output is required unless --dry-run")
    return config


def _build(args: argparse.Namespace, config: BuildConfig) -> int:
    """Build (or dry-run) the store and print the summary."""
    report = build_intent_store(args.sessions, args.items, args.output, config)
    if config.dry_run:
        print("\n=== dry run: sample prompts ===")
        for sample in report.sample_prompts[:4]:
            print(f"\n--- session {sample['session_id']!r}, perspective {sample['perspective']!r} ---")
            print(sample["prompt"])
        print()
    print("\n=== summary ===")
    print(report.summary())
    if report.output is not None:
        print(f"\nlook inside (from any folder):\n  {inspect_command(args, config, report.output)}")
    return 0


def inspect_command(args: argparse.Namespace, config: BuildConfig, output: Path) -> str:
    """The ``inspect_store`` command for the store just written: absolute paths, its first session, the
    catalogue and (when it is a sessions file inspect_store reads, not a click log) the sessions."""
    first = IntentStore.open(output).session_ids[:1]
    words = ["python", "-m", "llm4sbr_adapter.inspect_store", str(Path(output).resolve())]
    if len(first):
        words += ["--session", str(first[0])]
    words += ["--items", str(Path(args.items).resolve())]
    if not reads_as_click_log(args.sessions, config):
        words += ["--sessions", str(Path(args.sessions).resolve())]
    return shlex.join(words)


if __name__ == "__main__":
    sys.exit(main())
