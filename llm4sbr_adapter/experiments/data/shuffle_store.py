"""The shuffled control of any intent store: the same intents, given to other sessions of the same split.

    python -m llm4sbr_adapter.experiments.data.shuffle_store --store llm_test.safetensors --seed 0 \
        --out llm_shuffled_test.safetensors

Every per-session entry (intent vectors, top items and weights, answers) moves together to the row of a
seeded permutation; the session ids stay where they are, so the shuffled store binds to the same split file.
A model trained with the shuffled stores sees intents with the real distribution that carry no information
about their own session: if the real stores beat it, the gain comes from what the intents say about the
session, not from an added layer or extra parameters.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from llm4sbr_adapter.config import ConfigBase, setting
from llm4sbr_adapter.config_cli import add_config_arguments, config_from_args
from llm4sbr_adapter.errors import CliParser, add_log_level, flag_or_name, run_cli
from llm4sbr_adapter.output_paths import check_writes
from llm4sbr_adapter.store import IntentStore, write_store

__all__ = ["ShuffleStoreConfig", "main", "shuffle_store"]


@dataclasses.dataclass
class ShuffleStoreConfig(ConfigBase):
    """Which store to shuffle, with which seed, and where to write the control."""

    FORMAT = "llm4sbr_shuffle_store_config"

    store: str = setting(help="intent store to shuffle", metavar="PATH")
    out: str = setting(help="shuffled store to write", metavar="PATH")
    seed: int = setting(0, "seed of the permutation", minimum=0)

    def validate(self) -> None:
        if Path(self.out).resolve() == Path(self.store).resolve():
            self.fail("out", "must differ from --store (the input would be replaced)")


def shuffle_store(config: ShuffleStoreConfig) -> Path:
    """Write the shuffled copy of ``config.store``; returns its path."""
    check_writes({flag_or_name("out", "--out"): config.out}, {flag_or_name("store", "--store"): config.store})
    store = IntentStore.open(config.store)
    arrays = store.to_arrays()
    perm = np.random.default_rng(config.seed).permutation(store.num_sessions)
    meta = dataclasses.replace(
        store.metadata,
        created_at="",
        extra={**store.metadata.extra, "shuffled_from": Path(config.store).name, "shuffle_seed": config.seed},
    )
    return write_store(
        config.out,
        arrays["session_ids"],
        {p: v[perm] for p, v in arrays["intents"].items()},
        meta,
        dtype=store.metadata.dtype,
        top_items={p: v[perm] for p, v in arrays["top_items"].items()} or None,
        top_weights={p: v[perm] for p, v in arrays["top_weights"].items()} or None,
        item_ids=arrays["item_ids"],
        answers={p: [v[i] for i in perm] for p, v in arrays["answers"].items()} or None,
        raw_answers={p: [v[i] for i in perm] for p, v in arrays["raw_answers"].items()} or None,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = CliParser(description="Write the shuffled control of an intent store (intents moved to other sessions).")
    add_config_arguments(parser, ShuffleStoreConfig)
    add_log_level(parser, "warning")
    args = parser.parse_args(argv)

    def work() -> int:
        out = shuffle_store(config_from_args(ShuffleStoreConfig, args))
        print(f"wrote {out}")
        return 0

    return run_cli(work, args.log_level)


if __name__ == "__main__":
    raise SystemExit(main())
