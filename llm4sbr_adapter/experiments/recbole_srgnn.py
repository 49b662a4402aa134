"""RecBole's SR-GNN with LLM intents: a subclass of ``recbole.model.sequential_recommender.srgnn.SRGNN``.

:class:`IntentSRGNN` keeps RecBole's graph layers and attention readout and changes three things:

* ``forward`` stops where RecBole would apply ``linear_transform`` to ``[a; ht]``: the last item's
  GNN state ``ht`` (``h_local``, ``[batch, d]``) and the attention readout ``a`` (``h_global``,
  ``[batch, d]``) go to an :class:`~llm4sbr_adapter.IntentEnhancer`, whose ``out.session`` is the
  session vector; RecBole's ``linear_transform`` is removed;
* intents are looked up by a **per-row id** carried in the interaction (config key
  ``intent_id_field``, default ``"event_id"``);
* ``calculate_loss`` returns ``(rec_loss, aux_loss)``; RecBole's ``Trainer`` sums a tuple of losses
  and logs each part (``train_loss1`` = recommendation, ``train_loss2`` = intent alignment).

Why a per-row id and not ``session_id``: RecBole's sequential dataset turns a session
``<i1, i2, i3, i4>`` into the rows ``<i1>|i2``, ``<i1, i2>|i3``, ``<i1, i2, i3>|i4``. ``session_id`` (the
user field of a session dataset) survives that augmentation, but all rows of a session share it, so
an intent keyed by it would be inferred from the whole session and show each prefix its own target.
Every other column of the ``.inter`` file also survives as a per-row scalar holding the value of the
row's *target* interaction. An ``event_id:token`` column (unique per interaction) therefore names the
row "predict event e from the items before it", and the intent stored under ``e`` is built from
exactly those items. For RecBole's pre-split benchmark files (``benchmark_filename``), add a
``row_id:token`` column instead and set ``intent_id_field: row_id``.

Stores: :meth:`IntentSRGNN.bind_stores` takes one store for training mode and one for evaluation
mode (``model.training`` decides), so validation inside ``Trainer.fit`` reads the valid store; call
``bind_stores(eval=test_store)`` before testing. One store that holds every row's id may serve both.

Which split a store is for: :mod:`.train` passes each batch's ``sessions_sha256`` (the hash of the
split's pickle, whose row numbers are the ids) to the enhancer, which refuses a store built from another
file. RecBole gives a split no such identity: ``data_preparation`` cuts the leave-one-out split in memory
from the one ``.inter`` file, after re-indexing every token to internal ids, augmenting sessions into
rows and reordering them, so no file (and no hash) stands for "the valid rows", and the builder's
``sessions_sha256`` is the hash of its own sessions file (the JSONL of ``--export-sessions``, every
split in one file). This model therefore calls the enhancer without ``sessions_sha256``. What ties a row
to its intent is the raw ``intent_id_field`` token, unique across the ``.inter`` file, so a wrong split's
store cannot silently answer with another row's intent: it lacks the id. :meth:`IntentSRGNN.check_split`
makes that a check before training (the CLI runs it for train, valid and test): every row id of the
split must be in its store (with ``intent_missing`` ``"zeros"``/``"learned"``, at least one must be, and
the share missing is logged), else :class:`~llm4sbr_adapter.StoreMismatchError` names the split, the
counts and the id ranges.

RecBole 1.2.1 on numpy 2 / torch >= 2.6 needs two work-arounds, both here:
:class:`RecBoleConfig` (RecBole's ``Config`` sets numpy aliases that numpy 2 removed) and
:func:`load_recbole_checkpoint` (``Trainer.evaluate(load_best_model=True)`` calls ``torch.load``
without ``weights_only=False``). Install with::

    pip install --no-deps recbole==1.2.1
    pip install "pandas>=2.2,<3" scikit-learn tensorboard colorlog==4.7.2 texttable tabulate thop

Run (``--help`` explains every flag)::

    python -m llm4sbr_adapter.experiments.recbole_srgnn --data-path DIR --dataset NAME --store intents.safetensors
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import recbole
import torch
from recbole.config import Config
from recbole.model.sequential_recommender.srgnn import SRGNN
from recbole.utils import FeatureType

from llm4sbr_adapter import EnhancerOutput, IntentEnhancer, IntentEnhancerConfig, IntentStore, StoreMismatchError
from llm4sbr_adapter.atomic_files import atomic_open

# Importing recbole.model.sequential_recommender runs `torch.autograd.set_detect_anomaly(True)` (in its
# SINE module) for the whole process: that slows every backward pass and turns harmless 0 * inf
# gradients elsewhere into errors. Nothing here needs it.
torch.autograd.set_detect_anomaly(False)


logger = logging.getLogger(__name__)

DEFAULT_ID_FIELD = "event_id"
SRGNN_DEFAULTS = Path(recbole.__file__).parent / "properties" / "model" / "SRGNN.yaml"

# numpy aliases that RecBole 1.2.1 reads (np.float in its metrics, np.long in some layers); numpy 1.24
# and 2.0 removed them, and RecBole's own Config sets them from names (np.float_, ...) that numpy 2
# removed as well.
_NUMPY_ALIASES = {
    "bool": np.bool_,
    "int": np.int_,
    "float": np.float64,
    "complex": np.complex128,
    "object": np.object_,
    "str": np.str_,
    "long": np.int_,
    "unicode": np.str_,
}


class RecBoleConfig(Config):
    """RecBole's ``Config`` with a numpy-2-safe ``compatibility_settings``.

    It sets the same old numpy aliases as RecBole does (module attributes of numpy, as RecBole
    itself does on numpy 1.x), from names that still exist in numpy 2.
    """

    def compatibility_settings(self) -> None:  # noqa: D102 - RecBole hook
        for name, value in _NUMPY_ALIASES.items():
            if name not in np.__dict__:
                setattr(np, name, value)


def srgnn_config(
    dataset: str,
    data_path: str | os.PathLike,
    config_dict: Mapping[str, Any] | None = None,
    config_files: list[str] | None = None,
) -> RecBoleConfig:
    """A RecBole config for :class:`IntentSRGNN`: SRGNN's own defaults, then ``config_files``, then ``config_dict``.

    RecBole reads a model's defaults from ``properties/model/<ClassName>.yaml``, which does not exist
    for a subclass, so SRGNN's file is passed explicitly.
    """
    files = [str(SRGNN_DEFAULTS), *(config_files or [])]
    values = {"data_path": str(data_path), **dict(config_dict or {})}
    return RecBoleConfig(model=IntentSRGNN, dataset=dataset, config_file_list=files, config_dict=values)


def _integer_tokens(tokens: np.ndarray) -> np.ndarray | None:
    """``int64`` view of RecBole's raw tokens (index 0 is ``[PAD]`` -> -1), or ``None`` if one is not an integer."""
    out = np.full(len(tokens), -1, dtype=np.int64)
    try:
        out[1:] = [int(t) for t in tokens[1:]]
    except ValueError:
        return None
    return out


class IntentSRGNN(SRGNN):
    """RecBole SRGNN whose session vector comes from an :class:`IntentEnhancer`.

    Args:
        config: a RecBole config (see :func:`srgnn_config`). Extra keys read here:
            ``intent_id_field`` (token field with the per-row id, default ``"event_id"``),
            ``intent_perspectives`` (default: the store's), ``intent_text_dim`` (default: the store's),
            ``intent_fusion`` (``"concat"``), ``intent_loss_weight`` (0.1), ``intent_dropout`` (0.0),
            ``intent_missing`` (``"raise"``).
        dataset: the RecBole dataset the model is built for (``train_data.dataset``).
        store: intent store used in training mode (optional here; see :meth:`bind_stores`).
        eval_store: store used in eval mode (default: ``store``).
        enhancer_config: overrides everything the ``intent_*`` keys would set.
    """

    def __init__(
        self,
        config: Config,
        dataset: Any,
        store: IntentStore | None = None,
        eval_store: IntentStore | None = None,
        enhancer_config: IntentEnhancerConfig | None = None,
    ) -> None:
        super().__init__(config, dataset)
        del self.linear_transform  # the enhancer's fusion layer takes its place

        field = config["intent_id_field"] or DEFAULT_ID_FIELD
        if field not in dataset.field2type:
            raise ValueError(
                f"intent_id_field {field!r} is not a field of dataset {dataset.dataset_name!r} "
                f"(fields: {sorted(dataset.field2type)}); add an '{field}:token' column to the .inter file"
            )
        if dataset.field2type[field] != FeatureType.TOKEN:
            raise ValueError(f"intent_id_field {field!r} must be a token field, is {dataset.field2type[field]}")
        self.intent_id_field = field
        # RecBole remaps tokens to 1..n; field2id_token[k] is the raw token of internal id k.
        self._id_tokens = np.asarray(dataset.field2id_token[field]).astype(str)
        self._id_ints = _integer_tokens(self._id_tokens)

        if enhancer_config is None:
            enhancer_config = self._enhancer_config(config, store)
        if enhancer_config.hidden_size != self.embedding_size:
            raise ValueError(
                f"enhancer hidden_size {enhancer_config.hidden_size} != RecBole embedding_size {self.embedding_size}"
            )
        self.enhancer = IntentEnhancer(enhancer_config)
        self._train_store: IntentStore | None = None
        self._eval_store: IntentStore | None = None
        if store is not None or eval_store is not None:
            self.bind_stores(train=store, eval=eval_store if eval_store is not None else store)

    def _enhancer_config(self, config: Config, store: IntentStore | None) -> IntentEnhancerConfig:
        text_dim = config["intent_text_dim"] or (store.text_dim if store is not None else None)
        if text_dim is None:
            raise ValueError("IntentSRGNN needs a store or the config key intent_text_dim")
        perspectives = config["intent_perspectives"] or (store.perspectives if store is not None else None)
        # RecBole keys -> IntentEnhancerConfig fields; an absent (or empty) key keeps the config's own default
        given = {
            "perspectives": tuple(perspectives) if perspectives else None,
            "fusion": config["intent_fusion"] or None,
            "loss_weight": config["intent_loss_weight"],
            "dropout": config["intent_dropout"],
            "missing": config["intent_missing"] or None,
        }
        return IntentEnhancerConfig(
            hidden_size=self.embedding_size,
            text_dim=int(text_dim),
            **{name: value for name, value in given.items() if value is not None},
        )

    # ---- stores ------------------------------------------------------------------------
    def bind_stores(self, train: IntentStore | None = None, eval: IntentStore | None = None) -> IntentSRGNN:
        """Set the store read in training mode and/or the one read in eval mode (``None`` keeps the current one)."""
        for store in (train, eval):
            if store is not None:
                self.enhancer.bind_store(store)  # validates perspectives, text_dim, encoder
        if train is not None:
            self._train_store = train
        if eval is not None:
            self._eval_store = eval
        return self

    def active_store(self) -> IntentStore:
        """The store for the current mode, bound to the enhancer."""
        store = self._train_store if self.training else self._eval_store
        if store is None:
            mode = "training" if self.training else "eval"
            raise ValueError(f"IntentSRGNN has no intent store for {mode} mode: call bind_stores()")
        if self.enhancer.store is not store:
            self.enhancer.bind_store(store)
        return store

    def intent_ids(self, interaction: Any) -> np.ndarray:
        """Raw per-row ids ``[batch]`` (the store's id kind) of a batch of RecBole interactions."""
        store = self.active_store()
        return self._raw_ids(interaction[self.intent_id_field], store)

    def check_split(self, store: IntentStore, data: Any, split: str) -> dict[str, int]:
        """Check, before training, that ``store`` holds the intents of the rows of one RecBole split.

        RecBole gives a split no identity the store could record (no per-split file: see the module
        docstring), so instead of the enhancer's ``sessions_sha256`` check every row's raw
        ``intent_id_field`` token of ``data`` (a RecBole dataloader or its dataset) is looked up in
        ``store``. Raises :class:`~llm4sbr_adapter.StoreMismatchError` naming ``split``, the store, how many
        rows are missing and the id ranges, when some are missing and ``intent_missing`` is ``"raise"``,
        or when none is found (with ``"zeros"``/``"learned"`` every row would silently get a substitute);
        otherwise a warning reports the missing share. Returns ``{"rows": n, "found": k}``.
        """
        dataset = getattr(data, "dataset", data)
        ids = self._raw_ids(dataset.inter_feat[self.intent_id_field], store)
        _, found = store.rows(ids)
        n, k = len(ids), int(found.sum())
        if k < n:
            absent = ids[~found]
            ranges = ""
            if store.metadata.id_kind == "int":
                held = store.session_ids
                ranges = f"; the {split} rows have ids {ids.min()}..{ids.max()}, the store " + (
                    f"{held.min()}..{held.max()}" if len(held) else "none"
                )
            problem = (
                f"{store.path}: {n - k} of the {n} {split} rows are not in this store ({store.num_sessions} "
                f"ids; {self.intent_id_field} {absent[:5].tolist()}{' ...' if len(absent) > 5 else ''}"
                f"{ranges})"
            )
            missing = self.enhancer.config.missing
            if k == 0 or missing == "raise":
                raise StoreMismatchError(
                    f"{problem}: is it the {split} split's store, built from this dataset? (intent_missing={missing!r})"
                )
            logger.warning("%s; intent_missing=%r substitutes them", problem, missing)
        return {"rows": n, "found": k}

    def _raw_ids(self, internal: Any, store: IntentStore) -> np.ndarray:
        """RecBole's internal ids of ``intent_id_field`` -> the raw tokens, as the store's id kind."""
        if isinstance(internal, torch.Tensor):
            internal = internal.detach().cpu().numpy()
        internal = np.asarray(internal)
        if store.metadata.id_kind == "int":
            if self._id_ints is None:
                bad = next(t for t in self._id_tokens[1:] if not t.lstrip("-").isdigit())
                raise ValueError(
                    f"store {store.path} has integer session ids but field {self.intent_id_field!r} "
                    f"has the non-integer token {bad!r}"
                )
            return self._id_ints[internal]
        return self._id_tokens[internal]

    # ---- model -------------------------------------------------------------------------
    def session_behaviours(
        self, item_seq: torch.Tensor, item_seq_len: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """RecBole SRGNN up to (not including) ``linear_transform``.

        Args:
            item_seq: ``[batch, max_len]`` internal item ids, 0-padded at the end.
            item_seq_len: ``[batch]`` number of items per row.

        Returns:
            ``(h_local, h_global)``, each ``[batch, embedding_size]``: the last item's GNN state
            (RecBole's ``ht``) and the attention readout over the session (RecBole's ``a``).
        """
        alias, adjacency, nodes, mask = self._get_slice(item_seq)
        node_states = self.gnn(adjacency, self.item_embedding(nodes))  # [batch, max_len, d], one per unique item
        index = alias.unsqueeze(-1).expand(-1, -1, self.embedding_size)
        seq_states = torch.gather(node_states, 1, index)  # [batch, max_len, d], one per position
        h_local = self.gather_indexes(seq_states, item_seq_len - 1)  # [batch, d]
        logits = self.linear_three(torch.sigmoid(self.linear_one(h_local).unsqueeze(1) + self.linear_two(seq_states)))
        h_global = (logits * seq_states * mask.unsqueeze(-1).float()).sum(dim=1)  # [batch, d]
        return h_local, h_global

    def forward(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor, session_ids: Any) -> EnhancerOutput:
        """:class:`EnhancerOutput` whose ``session`` (``[batch, d]``) replaces RecBole's ``seq_output``."""
        h_local, h_global = self.session_behaviours(item_seq, item_seq_len)
        # No sessions_sha256= here (experiments/training/train.py passes its split pickle's): a RecBole split is cut in
        # memory from one .inter file and has no file identity; check_split covers each split's ids instead.
        return self.enhancer(h_local, h_global, session_ids=session_ids)

    def enhanced(self, interaction: Any) -> EnhancerOutput:
        """Run :meth:`forward` on a RecBole batch."""
        ids = self.intent_ids(interaction)
        return self.forward(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN], ids)

    def calculate_loss(self, interaction: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """``(rec_loss, aux_loss)``; RecBole's trainer back-propagates their sum."""
        out = self.enhanced(interaction)
        session = out.session
        pos_items = interaction[self.POS_ITEM_ID]
        if self.loss_type == "BPR":
            neg_items = interaction[self.NEG_ITEM_ID]
            pos_score = (session * self.item_embedding(pos_items)).sum(dim=-1)  # [batch]
            neg_score = (session * self.item_embedding(neg_items)).sum(dim=-1)  # [batch]
            rec = self.loss_fct(pos_score, neg_score)
        else:
            logits = session @ self.item_embedding.weight.T  # [batch, n_items]
            rec = self.loss_fct(logits, pos_items)
        return rec, out.aux_loss

    def predict(self, interaction: Any) -> torch.Tensor:
        """Scores ``[batch]`` of the candidate items in ``interaction[ITEM_ID]``."""
        session = self.enhanced(interaction).session
        return (session * self.item_embedding(interaction[self.ITEM_ID])).sum(dim=1)

    def full_sort_predict(self, interaction: Any) -> torch.Tensor:
        """Scores ``[batch, n_items]`` of all items."""
        return self.enhanced(interaction).session @ self.item_embedding.weight.T


def load_recbole_checkpoint(model: torch.nn.Module, path: str | os.PathLike) -> None:
    """Load the ``state_dict`` of a checkpoint that RecBole's ``Trainer`` wrote in this run.

    The file pickles RecBole's config too, so ``torch.load`` needs ``weights_only=False``: only
    use it on files you wrote yourself.
    """
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    model.load_state_dict(checkpoint["state_dict"])


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
    import csv
    import json

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
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Train RecBole's SR-GNN with an intent enhancer on a RecBole atomic-file dataset "
        "(leave-one-out split per session: last row test, second-to-last valid) and report test metrics once. "
        "With --export-sessions FILE it only writes the per-row sessions JSONL for the store builder and exits.",
    )
    parser.add_argument("--data-path", required=True, help="folder that holds <dataset>/<dataset>.inter")
    parser.add_argument("--dataset", required=True, help="RecBole dataset name (the .inter file's stem)")
    parser.add_argument(
        "--store",
        default=None,
        help="intent store for training rows (ids = values of --id-field); required for training",
    )
    parser.add_argument(
        "--export-sessions",
        default=None,
        metavar="FILE",
        help="write <dataset>.inter's rows as builder JSONL (id = target's --id-field, items = "
        "the items before it) to FILE and exit",
    )
    parser.add_argument("--valid-store", default=None, help="store for validation rows (default: --store)")
    parser.add_argument("--test-store", default=None, help="store for test rows (default: --valid-store)")
    parser.add_argument(
        "--id-field",
        default=DEFAULT_ID_FIELD,
        help="token column with a per-interaction id; a row's id is its target's (default: event_id)",
    )
    parser.add_argument("--session-field", default="session_id", help="column that groups interactions into sessions")
    parser.add_argument("--epochs", type=int, default=10, help="training epochs (best epoch picked on validation)")
    parser.add_argument("--embedding-size", type=int, default=64, help="SR-GNN hidden size")
    parser.add_argument("--batch-size", type=int, default=256, help="train and eval batch size")
    parser.add_argument("--fusion", choices=("concat", "gate"), default="concat", help="enhancer fusion")
    parser.add_argument("--loss-weight", type=float, default=0.1, help="weight of the intent alignment loss")
    parser.add_argument(
        "--topk",
        type=int,
        nargs="+",
        default=[10, 20],
        help="cut-offs K of Hit/MRR/NDCG@K (each at most the number of items); "
        "the best epoch is picked on MRR@<largest K> of the validation rows",
    )
    parser.add_argument("--checkpoint-dir", default="saved", help="where RecBole writes the best checkpoint")
    parser.add_argument("--seed", type=int, default=2020, help="RecBole seed")
    return parser


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Train, pick the best epoch on validation, evaluate on test once; returns the test metrics."""
    from recbole.data import create_dataset, data_preparation
    from recbole.trainer import Trainer
    from recbole.utils import init_seed

    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    if args.export_sessions:
        inter = Path(args.data_path) / args.dataset / f"{args.dataset}.inter"
        n = export_prefix_sessions(
            inter, args.export_sessions, session_field=args.session_field, id_field=args.id_field
        )
        print(f"wrote {n} rows to {args.export_sessions}")
        return {}
    if not args.store:
        parser.error("--store is required for training")
    config = srgnn_config(
        args.dataset,
        args.data_path,
        {
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
            "checkpoint_dir": args.checkpoint_dir,
            "seed": args.seed,
            "metrics": ["Hit", "MRR", "NDCG"],
            "topk": sorted(args.topk),
            "valid_metric": f"MRR@{max(args.topk)}",
        },
    )
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    store = IntentStore.open(args.store)
    valid_store = IntentStore.open(args.valid_store) if args.valid_store else store
    test_store = IntentStore.open(args.test_store) if args.test_store else valid_store
    model = IntentSRGNN(config, train_data.dataset, store=store, eval_store=valid_store).to(config["device"])
    # RecBole's splits have no file identity to compare with the stores' sessions_sha256 (module
    # docstring): check each split's row ids against its store before any training instead.
    for split, data, split_store in (
        ("train", train_data, store),
        ("valid", valid_data, valid_store),
        ("test", test_data, test_store),
    ):
        model.check_split(split_store, data, split)
    trainer = Trainer(config, model)
    best_valid, _ = trainer.fit(train_data, valid_data, saved=True, show_progress=True)
    print(f"best validation {config['valid_metric']}: {best_valid:.4f}")
    load_recbole_checkpoint(model, trainer.saved_model_file)
    model.bind_stores(eval=test_store)
    result = trainer.evaluate(test_data, load_best_model=False, show_progress=True)
    result = {k: float(v) for k, v in result.items()}
    print("test:", ", ".join(f"{k}={v:.4f}" for k, v in result.items()))
    return result


if __name__ == "__main__":
    main()
