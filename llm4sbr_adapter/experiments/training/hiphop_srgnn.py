"""SR-GNN with the HIPHOP parts from :mod:`llm4sbr_adapter.hiphop`, on the harness's data and protocol.

Same protocol as ``llm4sbr_adapter/experiments/training/train.py``: train on ``train.txt``, evaluate ``valid.txt``
after every
epoch, keep the state of the best validation ``--select-metric`` epoch, evaluate ``test.txt`` once with
it. Metrics are averaged over all test sessions (``llm4sbr_adapter/experiments/evaluation/metrics.py``).

Parts (each can be switched on alone):

* ``--semantic init|add``: item-title embeddings (``items.tsv`` encoded by the default sentence
  encoder, or by an LLM's hidden states with ``--title-encoder llm:default``; cached in
  ``--encoder-cache``) initialise the item table (``init``) or are added to it
  through a trainable projection (``add``); items without a title use the documented fallback.
* ``--intents``: K learnable intent queries over SR-GNN's per-click node states.
* ``--neighbours``: top-M training neighbours (global: SR-GNN's ``s_h``; local: mean of the last
  clicks' states) from a FAISS bank rebuilt from the TRAINING split at the start of every epoch and
  once more for the selected state before the final validation/test pass; sparse intent-guided
  attention (``--normaliser``); during training a row never retrieves itself (and, with
  ``--group-by-user``, no row of the same user -- use it for prefix-augmented data such as Beauty).
* ``--contrastive``: InfoNCE between ``s_h`` and the neighbour view (``--hard-negatives``).
* ``--enhancer`` with ``--store-train/valid/test``: the LLM4SBR IntentEnhancer replaces SR-GNN's
  fusion; its output also becomes the neighbour-attention query.

Example::

    python -m llm4sbr_adapter.experiments.data.prepare_data movielens --protocol temporal \\
        --src ../shared/data/ml-100k --out /tmp/ml100k
    python -m llm4sbr_adapter.experiments.training.hiphop_srgnn --data /tmp/ml100k --semantic add --intents
    --neighbours \\
        --contrastive --out /tmp/runs/hiphop_all_s0.json
"""

from __future__ import annotations

import argparse
import copy
import csv
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F

from llm4sbr_adapter.config import ConfigBase, setting
from llm4sbr_adapter.config_cli import add_config_arguments, config_from_args
from llm4sbr_adapter.enhancer import IntentEnhancer, IntentEnhancerConfig
from llm4sbr_adapter.errors import run_cli
from llm4sbr_adapter.hiphop import BackboneBatch, HiphopConfig, HiphopHead, SemanticItemEmbedding, align_text_to_rows

from ..data.catalogue import read_items_tsv
from ..data.splits import SplitData
from ..models.backbones.srgnn import SRGNN
from ..models.batching import Batch, batch_to_device, iterate_batches
from ..models.recommender import RecommenderModules
from .loop import TrainConfig, fit_and_evaluate, load_run_data
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

logger = logging.getLogger("llm4sbr_adapter.experiments.hiphop_srgnn")


def title_encoder_path(spec: str | None) -> Path | None:
    """``--title-encoder`` -> a Hugging Face folder for :class:`TextEncoder` (``None``: its default).

    ``None`` / ``"default"``: the builder's sentence encoder (all-MiniLM-L6-v2); ``"llm:default"``: the
    embedded default LLM (its GGUF dequantised once to a float32 folder); a ``.gguf`` file: the same for
    that file; any other path: a local model folder (an encoder or a decoder LLM; either way its last
    hidden states are mean-pooled over the title's tokens and L2-normalised).
    """
    from llm4sbr_adapter.offline.llm.default_model import default_llm_path
    from llm4sbr_adapter.offline.llm.transformers_backend import dequantised_gguf_folder

    if spec is None or spec == "default":
        return None
    if spec == "llm:default":
        return dequantised_gguf_folder(default_llm_path())
    path = Path(spec).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"--title-encoder {spec}: no such file or folder")
    if path.is_file() and path.suffix.lower() == ".gguf":
        return dequantised_gguf_folder(path)
    return path


def title_matrix(
    data_dir: Path, num_items: int, cache: Path | None, encoder_spec: str | None = None, batch_size: int = 64
) -> tuple[torch.Tensor, torch.Tensor]:
    """Text vectors in embedding-row order ``[num_items + 1, text_dim]`` and the has-title mask."""
    from llm4sbr_adapter.offline.encode import TextEncoder, catalogue_embeddings

    ids, titles = read_items_tsv(data_dir / "items.tsv", dense_ids=False)
    titles = [t.strip() for t in titles]
    encoder = TextEncoder(title_encoder_path(encoder_spec))
    vectors = catalogue_embeddings(encoder, ids, titles, cache_dir=cache, batch_size=batch_size)
    vectors[np.asarray([t == "" for t in titles], dtype=bool)] = 0.0  # no title -> fallback, not the encoding of ""
    text, has_text = align_text_to_rows(num_items + 1, {i: i for i in range(1, num_items + 1)}, ids, vectors)
    logger.info("titles: %d of %d items have one (%s)", int(has_text.sum()), num_items, encoder.name)
    return text, has_text


def user_groups(data_dir: Path) -> np.ndarray:
    """Per train row, an int code of its user (``rows_train.tsv``), for sibling-prefix exclusion."""
    path = data_dir / "rows_train.tsv"
    with open(path, encoding="utf-8") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        if reader.fieldnames is None or "user_id" not in reader.fieldnames or "row" not in reader.fieldnames:
            raise ValueError(f"{path}: line 1: needs columns 'row' and 'user_id', got {reader.fieldnames}")
        pairs = [(int(r["row"]), r["user_id"]) for r in reader]
    codes: dict[str, int] = {}
    out = np.empty(len(pairs), dtype=np.int64)
    for row, user in pairs:
        out[row] = codes.setdefault(user, len(codes))
    return out


@dataclass
class TitleConfig(ConfigBase):
    """How item titles enter SR-GNN's item table (``--semantic``); the flags are generated from the fields."""

    FORMAT: ClassVar[str] = "llm4sbr-hiphop-titles"

    semantic: Literal["none", "init", "add"] = setting(
        "none", "item-title semantics: initialise the item table from the titles, or add a projected title vector"
    )
    init_method: Literal["pca", "random"] = setting("pca", "fixed projection for --semantic init")
    projection: Literal["linear", "mlp"] = setting("linear", "trainable projection for --semantic add")
    title_encoder: str = setting(
        "default",
        "what embeds the titles for --semantic: 'default' (the builder's all-MiniLM-L6-v2), "
        "'llm:default' (the embedded default LLM, its GGUF dequantised to float32 once; last hidden "
        "states mean-pooled), a .gguf file (the same), or a local Hugging Face model folder",
        metavar="SPEC",
    )
    title_batch_size: int = setting(64, "titles per encoder batch", minimum=1)
    encoder_cache: str | None = setting(None, "folder to cache the title embeddings in (outside the checkout)")


# The harness starts from plain SR-GNN: each part is switched on by its flag (--intents, --neighbours, ...).
HARNESS_HEAD = HiphopConfig(use_intents=False, use_neighbours=False, use_contrastive=False)
HEAD_SKIP = ("hidden_size",)  # --hidden-size of TrainConfig


def head_config(args: argparse.Namespace) -> HiphopConfig:
    """The :class:`HiphopConfig` of the parsed flags (width from ``--hidden-size``)."""
    return config_from_args(HiphopConfig, args, base=HARNESS_HEAD, hidden_size=train_config(args).hidden_size)


def title_config(args: argparse.Namespace) -> TitleConfig:
    """The :class:`TitleConfig` of the parsed flags."""
    return config_from_args(TitleConfig, args)


class HiphopRecommender(RecommenderModules):
    """Backbone + optional semantic items + HiphopHead + optional IntentEnhancer, with one forward.

    A :class:`llm4sbr_adapter.experiments.training.loop.Recommender`; the neighbour bank is not part of ``state()``:
    rebuild it with :meth:`refresh_bank` (at every epoch start and after the best state is restored). Build
    it from parsed flags with :meth:`from_args`, or from configs; :meth:`attach_enhancer` adds the enhancer
    (after the other parts, so that they are initialised from the same random draws either way).
    """

    needs_graph = True

    def __init__(
        self,
        train: TrainConfig,
        head: HiphopConfig,
        titles: TitleConfig,
        num_items: int,
        data_dir: Path,
        *,
        group_by_user: bool = False,
    ) -> None:
        if head.hidden_size != train.hidden_size:
            raise ValueError(
                f"HiphopConfig.hidden_size {head.hidden_size} differs from TrainConfig.hidden_size {train.hidden_size}"
            )
        self.train_config, self.titles = train, titles
        self.device = torch.device(train.device)
        self.backbone = SRGNN(num_items, train.hidden_size, steps=train.gnn_steps)
        self.semantic = self._semantic_items(titles, num_items, data_dir, train.hidden_size)
        self.backbone.to(self.device)
        if self.semantic is not None:
            self.semantic.to(self.device)
        self.head = HiphopHead(head).to(self.device)
        self.enhancer, self.stores = None, {}
        self.groups = torch.from_numpy(user_groups(data_dir)) if group_by_user else None
        self.nonzero_sum: dict[str, float] = {}  # per neighbour level, since the last use_split()
        self.nonzero_rows = 0

    @classmethod
    def from_args(
        cls, args: argparse.Namespace, num_items: int, data: dict[str, SplitData], data_dir: Path
    ) -> HiphopRecommender:
        """The model the parsed flags describe, with its enhancer and stores when ``--enhancer`` is given."""
        train = train_config(args)
        model = cls(train, head_config(args), title_config(args), num_items, data_dir, group_by_user=args.group_by_user)
        model.attach_enhancer(*build_enhancer(args, train.hidden_size, data, train.device))
        return model

    def attach_enhancer(self, enhancer: IntentEnhancer | None, stores: dict) -> None:
        """Use ``enhancer`` (an ``IntentEnhancer`` bound to ``stores["train"]``) in place of SR-GNN's fusion."""
        self.enhancer, self.stores = enhancer, stores

    def _semantic_items(
        self, titles: TitleConfig, num_items: int, data_dir: Path, hidden_size: int
    ) -> SemanticItemEmbedding | None:
        """The title embedding of ``--semantic init|add`` (attached to the backbone's item table), or ``None``."""
        if titles.semantic == "none":
            return None
        text, has_text = title_matrix(
            data_dir,
            num_items,
            Path(titles.encoder_cache) if titles.encoder_cache else None,
            titles.title_encoder,
            titles.title_batch_size,
        )
        if titles.semantic == "init":
            semantic = SemanticItemEmbedding(
                text, hidden_size, mode="init", has_text=has_text, init_method=titles.init_method
            )
            semantic.attach(self.backbone.embedding)  # after SRGNN's reset_uniform(); verified on first use
            return semantic
        semantic = SemanticItemEmbedding(
            text,
            hidden_size,
            mode="add",
            has_text=has_text,
            projection=titles.projection,
            id_embedding=self.backbone.embedding,
        )
        self.backbone.embedding = semantic  # type: ignore[assignment]  # a drop-in: same lookup, same .weight
        return semantic

    def modules(self) -> list[torch.nn.Module]:
        return [m for m in (self.backbone, self.head, self.enhancer) if m is not None]

    def use_split(self, split: str) -> None:
        """Bind the enhancer to ``split``'s store and restart the sparsity diagnostic for a pass over it."""
        super().use_split(split)
        self.nonzero_sum, self.nonzero_rows = {}, 0

    def mean_nonzero_neighbours(self) -> dict[str, float]:
        """Mean number of neighbours with non-zero attention per row and level, over the last evaluation pass."""
        return {lv: v / max(self.nonzero_rows, 1) for lv, v in self.nonzero_sum.items()}

    def encode(
        self, batch: Batch
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """``(seq, mask, session, external intent or None, enhancer aux loss)``."""
        seq, last, glob = self.backbone.states(batch)  # seq is 0 at padded clicks
        mask = batch.mask
        if self.enhancer is None:
            return seq, mask, self.backbone.fuse(last, glob), None, last.new_zeros(())
        out = self.enhancer(
            last,
            glob,
            session_ids=batch.row_ids.cpu(),
            sessions_sha256=batch.sessions_sha256,
            sessions_source=batch.sessions_source,
        )
        return seq, mask, out.session, out.session, out.aux_loss

    def refresh_bank(self, train: SplitData) -> None:
        """Rebuild the neighbour bank from the training split with the current weights (bank = train only)."""
        if self.head.bank is None:
            return
        self.use_split("train")

        def run(batch: Batch) -> BackboneBatch:
            batch = batch_to_device(batch, self.device)
            seq, mask, session, _, _ = self.encode(batch)
            rows = batch.row_ids.cpu()
            return BackboneBatch(
                seq,
                mask,
                session,
                ids=rows,
                groups=self.groups[rows] if self.groups is not None else None,
                targets=batch.targets.cpu(),
            )

        config = self.train_config
        batches = iterate_batches(train, config.batch_size, max_len=config.max_len, graph=True)
        was = self.backbone.training
        self.train(False)
        self.head.refresh_bank(batches, run, model=self.head, progress=False)
        self.train(was)

    def loss_and_scores(self, batch: Batch, training: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        batch = batch_to_device(batch, self.device)
        seq, mask, session, intent, aux = self.encode(batch)
        if training:  # training rows are in the bank: exclude themselves (and their user's other rows)
            rows = batch.row_ids.cpu()
            out = self.head(
                seq,
                mask,
                session,
                intent=intent,
                session_ids=rows,
                groups=self.groups[rows] if self.groups is not None else None,
                targets=batch.targets,
            )
        else:  # validation/test: nothing but the session itself
            out = self.head(seq, mask, session, intent=intent)
        scores = self.backbone.scores(out.session)
        ce = F.cross_entropy(scores, batch.targets - 1)
        if out.neighbours is not None and not training:  # diagnostic: how sparse the neighbour attention is
            for lv, w in out.neighbours.weights.items():
                self.nonzero_sum[lv] = self.nonzero_sum.get(lv, 0.0) + float((w > 0).sum())
            self.nonzero_rows += len(batch.targets)
        return ce, aux + out.aux_loss, scores

    def state(self) -> dict:
        return {i: copy.deepcopy(m.state_dict()) for i, m in enumerate(self.modules())}

    def load_state(self, state: dict) -> None:
        for i, m in enumerate(self.modules()):
            m.load_state_dict(state[i])


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The flags, generated from :class:`TrainConfig`, :class:`TitleConfig`, :class:`HiphopConfig` and
    :class:`IntentEnhancerConfig`; a bad value is a usage error naming its flag."""
    p = new_parser(
        "SR-GNN + HIPHOP parts (semantic items, multi-intent, intent-guided "
        "neighbours, contrastive); epoch picked on validation, test evaluated once."
    )
    add_train_arguments(p)
    add_config_arguments(p.add_argument_group("item titles"), TitleConfig)
    head = p.add_argument_group("HIPHOP head")
    add_config_arguments(head, HiphopConfig, skip=HEAD_SKIP, defaults=HARNESS_HEAD)
    head.add_argument(
        "--group-by-user",
        action="store_true",
        help="during training also exclude neighbours of the same user (rows_train.tsv): for prefix-augmented data",
    )
    add_enhancer_arguments(p, "LLM4SBR IntentEnhancer with the --store-* intent stores replaces SR-GNN's fusion")
    args = p.parse_args(argv)
    check_configs(p, args, train_config, title_config, head_config)
    return args


def run(args: argparse.Namespace) -> dict:
    """Build the model from the flags and hand it to :func:`.training.fit_and_evaluate`; returns the result."""
    config = train_config(args)
    check_run_paths(config.data, config.out, store_flags(args))
    data_dir, data, num_items = load_run_data(config)
    model = HiphopRecommender.from_args(args, num_items, data, data_dir)
    head = model.head.config
    fields = {
        "model": "srgnn+hiphop",
        "parts": {
            "semantic": model.titles.semantic,
            "intents": head.use_intents,
            "neighbours": head.use_neighbours,
            "contrastive": head.use_contrastive,
            "enhancer": args.enhancer,
        },
        "num_items": num_items,
    }
    enhancer = model.enhancer.config if model.enhancer is not None else IntentEnhancerConfig
    settings = run_settings(args, (config, ()), (model.titles, ()), (head, HEAD_SKIP), (enhancer, ENHANCER_SKIP))
    return fit_and_evaluate(
        model,
        data,
        config,
        fields=fields,
        settings=settings,
        on_epoch_start=lambda epoch: model.refresh_bank(data["train"]),
        on_restore=lambda: model.refresh_bank(data["train"]),  # the bank is not part of the state
        extra_results=lambda: {"test_mean_nonzero_neighbours": model.mean_nonzero_neighbours()},
    )


def main(argv: Sequence[str] | None = None) -> int:
    """The command: a failure is one line, ``error: <message>`` (exit 1; traceback at --log-level debug)."""
    args = parse_args(argv)
    setup_logging(args)
    return run_cli(lambda: _report(args), args.log_level)


def _report(args: argparse.Namespace) -> int:
    result = run(args)
    parts = "+".join(k for k, v in result["parts"].items() if v not in (False, "none")) or "plain"
    select = result["select_metric"]
    print(
        f"srgnn[{parts}] seed {result['seed']}: best epoch {result['best_epoch']} (valid {select} "
        f"{result['valid_at_best'][select]:.4f}); test "
        + " ".join(f"{k} {v:.4f}" for k, v in result["test"].items())
        + f"; {result['seconds_per_epoch_train']:.1f} s/epoch"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
