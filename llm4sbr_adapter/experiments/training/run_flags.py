"""The command-line parts ``train`` and ``hiphop_srgnn`` share, generated from the configs' fields.

* :func:`add_train_arguments`: one flag per :class:`~.training.TrainConfig` field (``--data``, ``--epochs``,
  ``--batch-size``, ``--topk``, ``--out`` ...).
* :func:`add_enhancer_arguments`: ``--enhancer``, ``--store-train/valid/test``, ``--perspectives`` (default:
  all in the stores) and one flag per :class:`~llm4sbr_adapter.enhancer.IntentEnhancerConfig` field a user
  sets (``--fusion``, ``--aux-weight``, ...); the width comes from ``--hidden-size``, the text width from
  the stores. :func:`build_enhancer` turns them into an enhancer and its stores.
* :func:`run_settings`: every setting a run used, keyed as the flags' ``argparse`` names, for the
  ``"config"`` entry of its result file.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Mapping
from typing import Any

from llm4sbr_adapter.config import ConfigBase, ConfigError
from llm4sbr_adapter.config_cli import add_config_arguments, config_from_args, flag_settings
from llm4sbr_adapter.enhancer import IntentEnhancer, IntentEnhancerConfig
from llm4sbr_adapter.errors import CliParser, add_log_level

from ..data.splits import SplitData
from .intent_stores import open_stores
from .loop import TrainConfig

logger = logging.getLogger("llm4sbr_adapter.experiments.train")

# --hidden-size (TrainConfig) sets the enhancer's width; --perspectives defaults to the stores' own.
ENHANCER_SKIP = ("hidden_size", "perspectives")


def new_parser(description: str) -> CliParser:
    """A parser whose usage errors are one line (``error: ...``, exit status 2)."""
    return CliParser(description=description)


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of :class:`TrainConfig` (data, schedule, optimiser, model size, evaluation, output)."""
    add_config_arguments(parser.add_argument_group("training run"), TrainConfig)
    parser.add_argument("--quiet", action="store_true", help="log only warnings")
    add_log_level(parser, "info")


def add_enhancer_arguments(parser: argparse.ArgumentParser, enhancer_help: str) -> None:
    """``--enhancer``, the three stores, ``--perspectives`` and the :class:`IntentEnhancerConfig` flags."""
    group = parser.add_argument_group("intent enhancer")
    group.add_argument("--enhancer", action=argparse.BooleanOptionalAction, default=False, help=enhancer_help)
    group.add_argument("--store-train", help="intent store whose ids are the rows of train.txt")
    group.add_argument(
        "--store-valid",
        help="intent store whose ids are the rows of valid.txt (default without valid.txt: --store-train)",
    )
    group.add_argument("--store-test", help="intent store whose ids are the rows of test.txt")
    group.add_argument(
        "--perspectives", nargs="+", default=None, help="perspectives to use (default: all in the stores)"
    )
    add_config_arguments(group, IntentEnhancerConfig, skip=ENHANCER_SKIP)


def check_configs(parser: argparse.ArgumentParser, args: argparse.Namespace, *builders: Any) -> None:
    """Build each config from ``args`` once, so that a bad value is a usage error naming its flag."""
    try:
        for build in builders:
            build(args)
    except ConfigError as err:
        parser.error(str(err))


def train_config(args: argparse.Namespace) -> TrainConfig:
    """The :class:`TrainConfig` of the parsed flags."""
    return config_from_args(TrainConfig, args)


def build_enhancer(
    args: argparse.Namespace, hidden_size: int, data: Mapping[str, SplitData], device: str
) -> tuple[IntentEnhancer | None, dict]:
    """The enhancer of the flags (bound to the training store) and ``{split: IntentStore}``; ``(None, {})``
    without ``--enhancer``."""
    carved = data["valid"].path == data["train"].path  # validation rows of train.txt: the train store
    valid_store = args.store_valid or (args.store_train if carved else None)
    paths = {"train": args.store_train, "valid": valid_store, "test": args.store_test}
    if not args.enhancer:
        if any(paths.values()):
            logger.warning("--store-* given without --enhancer: the stores are ignored")
        return None, {}
    stores = open_stores(paths, data)
    config = config_from_args(
        IntentEnhancerConfig,
        args,
        hidden_size=hidden_size,
        text_dim=stores["train"].text_dim,
        perspectives=tuple(args.perspectives or stores["train"].perspectives),
    )
    return IntentEnhancer(config, store=stores["train"]).to(device), stores


def run_settings(
    args: argparse.Namespace, *configs: tuple[ConfigBase | type[ConfigBase], tuple[str, ...]]
) -> dict[str, Any]:
    """``{flag's argparse name: value}`` of every setting of the command (``--quiet`` aside).

    ``configs``: ``(config, skipped fields)`` pairs: each config the run built (its validated values), or the
    class of one it did not build (the flags as typed, else the defaults), and the fields it has no flag for.
    """
    shown = {k: v for k, v in vars(args).items() if k not in ("quiet", "log_level")}
    settings = {k: list(v) if isinstance(v, tuple) else v for k, v in shown.items()}
    for source, skip in configs:
        settings.update(flag_settings(source, args, skip=skip))
    return settings


def setup_logging(args: argparse.Namespace) -> None:
    """``--log-level`` (INFO by default) to stderr, or WARNING with ``--quiet``."""
    level = logging.WARNING if args.quiet else logging.getLevelName(getattr(args, "log_level", "INFO"))
    logging.basicConfig(level=level, format="%(asctime)s %(message)s", stream=sys.stderr)
