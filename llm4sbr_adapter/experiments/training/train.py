"""Train and evaluate a session-based backbone, with or without the LLM4SBR intent enhancer.

Protocol: train on ``train.txt``; after every epoch evaluate on ``valid.txt``; keep the model state of
the epoch with the best validation ``--select-metric`` (MRR@20 by default); evaluate ``test.txt`` once,
with that state, at the end. Metrics are averaged over all test sessions (see
``llm4sbr_adapter/experiments/evaluation/metrics.py``).

With ``--enhancer`` the backbone's ``(h_local, h_global)`` go through
:class:`llm4sbr_adapter.enhancer.IntentEnhancer`; each split has its own intent store (row ids of that
split's pickle, tied to it by ``sessions_sha256``) and the loss is ``CE + out.aux_loss``.

Writes ``--out`` (JSON: config, per-epoch log, best epoch, test metrics, seconds per epoch, peak memory)
and, beside it, ``<out stem>.ranks.npz`` with the per-session test and validation ranks (for paired
bootstrap comparisons in ``llm4sbr_adapter/experiments/evaluation/summarize.py``).

This module is the command line only: the loop is :func:`llm4sbr_adapter.experiments.training.loop.fit_and_evaluate`
(shared with ``hiphop_srgnn``), its settings :class:`~llm4sbr_adapter.experiments.training.loop.TrainConfig`, from
whose fields (and :class:`~llm4sbr_adapter.enhancer.IntentEnhancerConfig`'s) the flags are generated.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from llm4sbr_adapter.enhancer import IntentEnhancerConfig
from llm4sbr_adapter.errors import run_cli

from ..models.backbones import BACKBONES
from ..models.recommender import RecommenderModules, Session, build_backbone
from .loop import Recommender, TrainConfig, fit_and_evaluate, load_run_data, peak_rss_mb
from .process_memory import mapped_file_mb
from .run_flags import (
    ENHANCER_SKIP,
    add_enhancer_arguments,
    add_train_arguments,
    build_enhancer,
    check_configs,
    new_parser,
    run_settings,
    setup_logging,
    train_config,
)
from .run_paths import check_run_paths, store_flags

__all__ = [
    "Recommender",
    "RecommenderModules",
    "Session",
    "TrainConfig",
    "fit_and_evaluate",
    "main",
    "parse_args",
    "run",
]

logger = logging.getLogger("llm4sbr_adapter.experiments.train")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The flags (generated from :class:`TrainConfig` and :class:`IntentEnhancerConfig`).

    A bad value is a usage error naming its flag.
    """
    p = new_parser(
        "Train a session-based recommender (SR-GNN / NARM / STAMP), "
        "optionally with the LLM4SBR intent enhancer; epoch picked on validation, test once."
    )
    p.add_argument("--model", choices=sorted(BACKBONES), default="srgnn", help="backbone")
    add_train_arguments(p)
    add_enhancer_arguments(
        p, "fuse intents from the stores with IntentEnhancer (--no-enhancer: the backbone's own fusion)"
    )
    args = p.parse_args(argv)
    check_configs(p, args, train_config)
    return args


def run(args: argparse.Namespace) -> dict:
    """Train, select the epoch on validation, evaluate test once; returns the result dict (also written)."""
    config = train_config(args)
    check_run_paths(config.data, config.out, store_flags(args))
    _, data, num_items = load_run_data(config)
    backbone = build_backbone(args.model, num_items, config.hidden_size, config.gnn_steps).to(config.device)
    enhancer, stores = build_enhancer(args, config.hidden_size, data, config.device)
    sess = Session(backbone, enhancer, stores, device=config.device)
    fields = {
        "model": args.model,
        "enhancer": bool(args.enhancer),
        "num_items": num_items,
        "stores": {split: str(s.path) for split, s in stores.items()},
        "store_text_encoder": stores["train"].metadata.text_encoder if stores else None,
    }
    settings = run_settings(
        args, (config, ()), (enhancer.config if enhancer is not None else IntentEnhancerConfig, ENHANCER_SKIP)
    )

    def store_memory() -> dict:
        """The stores' resident pages after the run (data, like the dataset) and the peak RSS without them."""
        mapped = mapped_file_mb([s.path for s in stores.values()]) if stores else {"Rss": 0.0}
        if mapped is None:
            return {"store_rss_mb": None, "peak_rss_mb_without_store": None}
        return {"store_rss_mb": mapped["Rss"], "peak_rss_mb_without_store": peak_rss_mb() - mapped["Rss"]}

    return fit_and_evaluate(sess, data, config, fields=fields, settings=settings, extra_results=store_memory)


def main(argv: Sequence[str] | None = None) -> int:
    """The command: a failure is one line, ``error: <message>`` (exit 1; traceback at --log-level debug)."""
    args = parse_args(argv)
    setup_logging(args)
    return run_cli(lambda: _report(args), args.log_level)


def _report(args: argparse.Namespace) -> int:
    result = run(args)
    metrics, select = result["test"], result["select_metric"]
    name = args.model + (" + enhancer" if args.enhancer else "")
    print(
        f"{name} seed {result['seed']}: best epoch {result['best_epoch']} "
        f"(valid {select} {result['valid_at_best'][select]:.4f}); test "
        + " ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        + f"; {result['seconds_per_epoch_train']:.1f} s/epoch, peak RSS {result['peak_rss_mb']:.0f} MiB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
