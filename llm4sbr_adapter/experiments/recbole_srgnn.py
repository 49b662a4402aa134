"""Train any RecBole sequential model with (or without) LLM intents: the command line of
:class:`~llm4sbr_adapter.integrations.recbole_wrapper.IntentRecBole`.

``--model`` names the backbone (SRGNN by default; NARM, STAMP, GRU4Rec, SASRec, ... alike). With
``--store`` the intents of each row are read from the stores (one per split, or one holding every row);
without it the run is the baseline arm: the same wrapper and layers fed zero intents, no auxiliary loss.
Each split's store is checked against the split's rows before training (``IntentRecBole.check_split``).
With ``--export-sessions FILE`` it only writes the per-row sessions JSONL for the store builder.

Install RecBole with ``pip install -e ".[recbole]"`` (docs/integration-recbole.md has a leaner route).
Run (``--help`` explains every flag)::

    python -m llm4sbr_adapter.experiments.recbole_srgnn --data-path DIR --dataset NAME --model NARM \\
        --store intents.safetensors
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import ClassVar, Literal

from llm4sbr_adapter.atomic_files import atomic_open
from llm4sbr_adapter.config import ConfigBase, ConfigError, setting
from llm4sbr_adapter.config_cli import add_config_arguments, config_from_args
from llm4sbr_adapter.errors import CliParser
from llm4sbr_adapter.integrations.recbole_config import recbole_config
from llm4sbr_adapter.integrations.recbole_wrapper import IntentRecBole, load_recbole_checkpoint

logger = logging.getLogger(__name__)

DEFAULT_ID_FIELD = "event_id"

__all__ = [
    "RecBoleRunConfig",
    "build_parser",
    "export_prefix_sessions",
    "main",
    "IntentRecBole",
    "load_recbole_checkpoint",
]


# --------------------------------------------------------------------------- rows for the builder
def export_prefix_sessions(
    inter_path: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    session_field: str = "session_id",
    item_field: str = "item_id",
    time_field: str = "timestamp",
    id_field: str = DEFAULT_ID_FIELD,
) -> int:
    """Write one JSONL line per RecBole row: ``{"session_id": <target's id>, "items": [items before it]}``.

    This is the sessions file for ``llm4sbr_adapter.build_store`` (JSONL input): the store it builds
    is keyed by the ``id_field`` of each row's target and its prompts show the row's input items
    only. Interactions are ordered by ``time_field`` within a session, as RecBole does (times must
    differ within a session). Returns the number of rows written.
    """
    inter_path = Path(inter_path)
    with open(inter_path, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = [h.split(":")[0] for h in next(reader, [])]
        missing = [f for f in (session_field, item_field, time_field, id_field) if f not in header]
        if missing:
            raise ValueError(f"{inter_path}: line 1: header lacks {missing} (has {header})")
        col = {f: header.index(f) for f in (session_field, item_field, time_field, id_field)}
        sessions: dict[str, list[tuple[float, str, str, int]]] = {}
        seen: set[str] = set()
        for lineno, row in enumerate(reader, 2):
            if not row:
                continue
            try:
                event = row[col[id_field]]
                key = (float(row[col[time_field]]), row[col[item_field]], event, lineno)
            except (IndexError, ValueError) as err:
                raise ValueError(f"{inter_path}: line {lineno}: {err}") from None
            if event in seen:
                raise ValueError(f"{inter_path}: line {lineno}: {id_field} {event!r} occurs twice")
            seen.add(event)
            sessions.setdefault(row[col[session_field]], []).append(key)
    count = 0
    with atomic_open(out_path, "w") as out:
        for session, events in sessions.items():
            events.sort(key=lambda e: e[0])
            for k in range(1, len(events)):
                items = [e[1] for e in events[:k]]
                out.write(json.dumps({"session_id": events[k][2], "items": items, "source_session": session}) + "\n")
                count += 1
    return count


# --------------------------------------------------------------------------- CLI
@dataclasses.dataclass
class RecBoleRunConfig(ConfigBase):
    """Every setting of the RecBole driver; its flags are generated from these fields."""

    FORMAT: ClassVar[str] = "llm4sbr_recbole_run_config"

    data_path: str = setting(help="folder that holds <dataset>/<dataset>.inter", metavar="DIR")
    dataset: str = setting(help="RecBole dataset name (the .inter file's stem)", metavar="NAME")
    model: str = setting("SRGNN", "RecBole sequential model (SRGNN, NARM, STAMP, GRU4Rec, ...)")
    config_file: tuple[str, ...] = setting(
        (),
        "RecBole config file, read after the model's defaults and before these flags (repeatable); "
        "intent_* keys set the wrapper and the enhancer",
        metavar="YAML",
    )
    store: str | None = setting(
        None, "intent store for training rows (ids = values of --id-field); without it: the baseline arm"
    )
    export_sessions: str | None = setting(
        None,
        "write <dataset>.inter's rows as builder JSONL (id = target's --id-field, items = the items before it) "
        "to FILE and exit",
        metavar="FILE",
    )
    valid_store: str | None = setting(None, "store for validation rows (default: --store)")
    test_store: str | None = setting(None, "store for test rows (default: --valid-store)")
    id_field: str = setting(DEFAULT_ID_FIELD, "token column with a per-interaction id; a row's id is its target's")
    session_field: str = setting("session_id", "column that groups interactions into sessions")
    epochs: int = setting(10, "training epochs (best epoch picked on validation)", minimum=1)
    embedding_size: int = setting(64, "item embedding size of the backbone", minimum=1)
    batch_size: int = setting(256, "train and eval batch size", minimum=1)
    fusion: Literal["concat", "gate"] = setting("concat", "enhancer fusion")
    loss_weight: float = setting(0.1, "weight of the intent alignment loss", minimum=0.0)
    topk: tuple[int, ...] = setting(
        (10, 20),
        "cut-offs K of Hit/MRR/NDCG@K (each at most the number of items); the best epoch is picked on "
        "MRR@<largest K> of the validation rows",
    )
    checkpoint_dir: str = setting("saved", "where RecBole writes the best checkpoint")
    seed: int = setting(2020, "RecBole seed")
    progress: bool = setting(True, "progress bars")

    def validate(self) -> None:
        if (self.valid_store or self.test_store) and not self.store:
            self.fail(
                "valid_store",
                f"and {self.ref('test_store')} need {self.ref('store')} (without stores the run is the baseline arm)",
            )
        if not self.topk or min(self.topk) < 1:
            self.fail("topk", f"must be positive cut-offs, got {list(self.topk)}")


def build_parser() -> argparse.ArgumentParser:
    parser = CliParser(
        description="Train a RecBole sequential model with an intent enhancer (or, without --store, its baseline arm: "
        "the same layers fed zero intents) on a RecBole atomic-file dataset (leave-one-out split per session: last "
        "row test, second-to-last valid) and report test metrics once. With --export-sessions FILE it only writes "
        "the per-row sessions JSONL for the store builder and exits.",
    )
    add_config_arguments(parser, RecBoleRunConfig)
    return parser


def run_config(args: RecBoleRunConfig) -> dict:
    """The RecBole ``config_dict`` of a run: the flags as RecBole keys and ``intent_*`` keys."""
    values = {
        "USER_ID_FIELD": args.session_field,
        "load_col": {"inter": [args.session_field, "item_id", "timestamp", args.id_field]},
        "intent_id_field": args.id_field,
        "intent_fusion": args.fusion,
        "intent_loss_weight": args.loss_weight,
        "embedding_size": args.embedding_size,
        "epochs": args.epochs,
        "train_batch_size": args.batch_size,
        "eval_batch_size": args.batch_size,
        "train_neg_sample_args": None,
        "loss_type": "CE",
        "checkpoint_dir": args.checkpoint_dir,
        "seed": args.seed,
        "metrics": ["Hit", "MRR", "NDCG"],
        "topk": sorted(args.topk),
        "valid_metric": f"MRR@{max(args.topk)}",
        "show_progress": args.progress,
    }
    for key, value in (("intent_store", args.store), ("intent_valid_store", args.valid_store)):
        if value:
            values[key] = value
    if args.test_store:
        values["intent_test_store"] = args.test_store
    return values


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Train, pick the best epoch on validation, evaluate on test once; returns the test metrics."""
    # the data and trainer parts of RecBole are loaded only when a run starts (the model classes come with the wrapper)
    from recbole.data import create_dataset, data_preparation
    from recbole.trainer import Trainer
    from recbole.utils import init_seed

    parser = build_parser()
    try:
        args = config_from_args(RecBoleRunConfig, parser.parse_args(argv))
    except ConfigError as err:
        parser.error(str(err))
    logging.basicConfig(level=logging.INFO)
    if args.export_sessions:
        inter = Path(args.data_path) / args.dataset / f"{args.dataset}.inter"
        out = args.export_sessions
        n = export_prefix_sessions(inter, out, session_field=args.session_field, id_field=args.id_field)
        print(f"wrote {n} rows to {args.export_sessions}")
        return {}
    config = recbole_config(args.model, args.dataset, args.data_path, run_config(args), list(args.config_file))
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    model = IntentRecBole(config, train_data.dataset).to(config["device"])
    if not model.baseline:
        # RecBole's splits have no file identity to compare with the stores' sessions_sha256: check each
        # split's row ids against its store before any training instead.
        for split, data in (("train", train_data), ("valid", valid_data), ("test", test_data)):
            model.check_split(data, split)
    trainer = Trainer(config, model)
    best_valid, _ = trainer.fit(train_data, valid_data, saved=True, show_progress=config["show_progress"])
    arm = "baseline arm (no intents)" if model.baseline else "with intents"
    print(f"{args.model}, {arm}: best validation {config['valid_metric']}: {best_valid:.4f}")
    load_recbole_checkpoint(model, trainer.saved_model_file)
    model.use_split("test")
    result = trainer.evaluate(test_data, load_best_model=False, show_progress=config["show_progress"])
    result = {k: float(v) for k, v in result.items()}
    print("test:", ", ".join(f"{k}={v:.4f}" for k, v in result.items()))
    return result


if __name__ == "__main__":
    main()
