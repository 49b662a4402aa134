"""SR-GNN with the HIPHOP parts from :mod:`llm4sbr_adapter.hiphop`, on the harness's data and protocol.

Same protocol as ``llm4sbr_adapter/experiments/train.py``: train on ``train.txt``, evaluate ``valid.txt`` after every
epoch, keep the state of the best validation ``--select-metric`` epoch, evaluate ``test.txt`` once with
it. Metrics are averaged over all test sessions (``llm4sbr_adapter/experiments/metrics.py``).

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

    python -m llm4sbr_adapter.experiments.prepare_data movielens --protocol temporal --src ../shared/data/ml-100k --out /tmp/ml100k
    python -m llm4sbr_adapter.experiments.hiphop_srgnn --data /tmp/ml100k --semantic add --intents --neighbours \\
        --contrastive --out /tmp/runs/hiphop_all_s0.json
"""

from __future__ import annotations

import argparse
import copy
import csv
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from llm4sbr_adapter.hiphop import BackboneBatch, HiphopConfig, HiphopHead, SemanticItemEmbedding, align_text_to_rows

from .backbones.srgnn import SRGNN
from .catalogue import read_items_tsv
from .intent_stores import open_stores
from .session_data import Batch, SplitData, batch_to_device, iterate_batches
from .train import (
    RecommenderModules,
    add_evaluation_flags,
    add_store_flags,
    add_training_flags,
    fit_and_evaluate,
    load_run_data,
)

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


class HiphopRecommender(RecommenderModules):
    """Backbone + optional semantic items + HiphopHead + optional IntentEnhancer, with one forward.

    A :class:`llm4sbr_adapter.experiments.train.Recommender`; the neighbour bank is not part of ``state()``: rebuild it with
    :meth:`refresh_bank` (at every epoch start and after the best state is restored).
    """

    needs_graph = True

    def __init__(self, args: argparse.Namespace, num_items: int, data: dict[str, SplitData], data_dir: Path) -> None:
        self.args = args
        self.device = torch.device(args.device)
        self.backbone = SRGNN(num_items, args.hidden_size, steps=args.gnn_steps)
        self.semantic = None
        if args.semantic != "none":
            text, has_text = title_matrix(
                data_dir,
                num_items,
                Path(args.encoder_cache) if args.encoder_cache else None,
                args.title_encoder,
                args.title_batch_size,
            )
            if args.semantic == "init":
                self.semantic = SemanticItemEmbedding(
                    text, args.hidden_size, mode="init", has_text=has_text, init_method=args.init_method
                )
                self.semantic.attach(self.backbone.embedding)  # after SRGNN's reset_uniform(); verified on first use
            else:
                self.semantic = SemanticItemEmbedding(
                    text,
                    args.hidden_size,
                    mode="add",
                    has_text=has_text,
                    projection=args.projection,
                    id_embedding=self.backbone.embedding,
                )
                self.backbone.embedding = self.semantic
        self.backbone.to(self.device)
        if self.semantic is not None:
            self.semantic.to(self.device)
        cfg = HiphopConfig(
            hidden_size=args.hidden_size,
            use_intents=args.intents,
            num_intents=args.num_intents,
            num_heads=args.num_heads,
            diversity_weight=args.diversity_weight,
            use_neighbours=args.neighbours,
            top_m=args.top_m,
            local_last_n=args.local_last_n,
            bank_index=args.bank_index,
            bank_nprobe=args.bank_nprobe,
            normaliser=args.normaliser,
            topk=args.topk_attention,
            attention_scale=args.attention_scale,
            use_contrastive=args.contrastive,
            contrastive_weight=args.contrastive_weight,
            temperature=args.temperature,
            hard_negatives=args.hard_negatives,
            num_hard_negatives=args.num_hard_negatives,
        )
        self.head = HiphopHead(cfg).to(self.device)
        self.enhancer, self.stores = None, {}
        if args.enhancer:
            from llm4sbr_adapter.enhancer import IntentEnhancer, IntentEnhancerConfig

            self.stores = open_stores(
                {"train": args.store_train, "valid": args.store_valid, "test": args.store_test}, data
            )
            ecfg = IntentEnhancerConfig(
                hidden_size=args.hidden_size,
                text_dim=self.stores["train"].text_dim,
                perspectives=tuple(self.stores["train"].perspectives),
                loss_weight=args.aux_weight,
            )
            self.enhancer = IntentEnhancer(ecfg, store=self.stores["train"]).to(self.device)
        self.groups = torch.from_numpy(user_groups(data_dir)) if args.group_by_user else None
        self.nonzero_sum: dict[str, float] = {}  # per neighbour level, since the last use_split()
        self.nonzero_rows = 0

    def modules(self) -> list[torch.nn.Module]:
        return [m for m in (self.backbone, self.head, self.enhancer) if m is not None]

    def use_split(self, split: str) -> None:
        """Bind the enhancer to ``split``'s store and restart the sparsity diagnostic for a pass over it."""
        super().use_split(split)
        self.nonzero_sum, self.nonzero_rows = {}, 0

    def mean_nonzero_neighbours(self) -> dict[str, float]:
        """Mean number of neighbours with non-zero attention per row and level, over the last evaluation pass."""
        return {lv: v / max(self.nonzero_rows, 1) for lv, v in self.nonzero_sum.items()}

    def encode(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
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

        batches = iterate_batches(train, self.args.batch_size, max_len=self.args.max_len, graph=True)
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
    p = argparse.ArgumentParser(
        description="SR-GNN + HIPHOP parts (semantic items, multi-intent, intent-guided "
        "neighbours, contrastive); epoch picked on validation, test evaluated once."
    )
    p.add_argument(
        "--data",
        required=True,
        help="folder with train.txt, valid.txt, test.txt, items.tsv (llm4sbr_adapter.experiments.prepare_data)",
    )
    add_training_flags(p)
    p.add_argument(
        "--semantic",
        choices=("none", "init", "add"),
        default="none",
        help="item-title semantics: initialise the item table from the titles, or add a projected title vector",
    )
    p.add_argument(
        "--init-method", choices=("pca", "random"), default="pca", help="fixed projection for --semantic init"
    )
    p.add_argument(
        "--projection", choices=("linear", "mlp"), default="linear", help="trainable projection for --semantic add"
    )
    p.add_argument(
        "--title-encoder",
        default="default",
        metavar="SPEC",
        help="what embeds the titles for --semantic: 'default' (the builder's all-MiniLM-L6-v2), "
        "'llm:default' (the embedded default LLM, its GGUF dequantised to float32 once; last hidden "
        "states mean-pooled), a .gguf file (the same), or a local Hugging Face model folder",
    )
    p.add_argument("--title-batch-size", type=int, default=64, help="titles per encoder batch (default 64)")
    p.add_argument(
        "--encoder-cache", default=None, help="folder to cache the title embeddings in (outside the checkout)"
    )
    p.add_argument("--intents", action=argparse.BooleanOptionalAction, default=False, help="multi-intent capture")
    p.add_argument("--num-intents", type=int, default=4, help="K intent queries")
    p.add_argument("--num-heads", type=int, default=1, help="heads of the intent-over-clicks attention")
    p.add_argument("--diversity-weight", type=float, default=0.0, help="weight of the intent diversity regulariser")
    p.add_argument(
        "--neighbours", action=argparse.BooleanOptionalAction, default=False, help="intent-guided training neighbours"
    )
    p.add_argument("--top-m", type=int, default=10, help="neighbours per level")
    p.add_argument("--local-last-n", type=int, default=3, help="clicks averaged for the local level")
    p.add_argument(
        "--bank-index",
        choices=("flat", "ivf"),
        default="flat",
        help="FAISS index of the neighbour bank: flat = exact; ivf = approximate inverted file, "
        "faster on large banks (Beauty: see docs/hiphop.md)",
    )
    p.add_argument("--bank-nprobe", type=int, default=16, help="IVF cells searched per query (--bank-index ivf)")
    p.add_argument(
        "--normaliser",
        choices=("entmax15", "sparsemax", "topk", "softmax"),
        default="entmax15",
        help="neighbour attention normaliser (softmax = dense baseline)",
    )
    p.add_argument(
        "--attention-scale",
        type=float,
        default=1.0,
        help="initial (learned) score scale of the neighbour attention; larger starts sparser",
    )
    p.add_argument("--topk-attention", type=int, default=None, help="k for --normaliser topk")
    p.add_argument(
        "--group-by-user",
        action="store_true",
        help="during training also exclude neighbours of the same user (rows_train.tsv): for prefix-augmented data",
    )
    p.add_argument(
        "--contrastive",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="InfoNCE between SR-GNN's session vector and the neighbour view (needs --neighbours)",
    )
    p.add_argument("--contrastive-weight", type=float, default=0.1, help="weight of the contrastive loss")
    p.add_argument("--temperature", type=float, default=0.2, help="InfoNCE temperature")
    p.add_argument("--hard-negatives", choices=("none", "bank", "batch"), default="none", help="hard-negative source")
    p.add_argument(
        "--num-hard-negatives",
        type=int,
        default=8,
        help="hard negatives per row (used only with --hard-negatives bank|batch; must be >= 1 then)",
    )
    p.add_argument(
        "--enhancer",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="LLM4SBR IntentEnhancer with the --store-* intent stores replaces SR-GNN's fusion",
    )
    add_store_flags(p)
    p.add_argument("--aux-weight", type=float, default=0.1, help="enhancer loss_weight")
    add_evaluation_flags(p)
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> dict:
    """Build the model from the flags and hand it to :func:`llm4sbr_adapter.experiments.train.fit_and_evaluate`; returns the result."""
    data_dir, data, num_items = load_run_data(args)
    model = HiphopRecommender(args, num_items, data, data_dir)
    fields = {
        "model": "srgnn+hiphop",
        "parts": {
            "semantic": args.semantic,
            "intents": args.intents,
            "neighbours": args.neighbours,
            "contrastive": args.contrastive,
            "enhancer": args.enhancer,
        },
        "num_items": num_items,
    }
    return fit_and_evaluate(
        model,
        data,
        args,
        fields=fields,
        on_epoch_start=lambda epoch: model.refresh_bank(data["train"]),
        on_restore=lambda: model.refresh_bank(data["train"]),  # the bank is not part of the state
        extra_results=lambda: {"test_mean_nonzero_neighbours": model.mean_nonzero_neighbours()},
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr
    )
    result = run(args)
    parts = "+".join(k for k, v in result["parts"].items() if v not in (False, "none")) or "plain"
    print(
        f"srgnn[{parts}] seed {args.seed}: best epoch {result['best_epoch']} (valid {args.select_metric} "
        f"{result['valid_at_best'][args.select_metric]:.4f}); test "
        + " ".join(f"{k} {v:.4f}" for k, v in result["test"].items())
        + f"; {result['seconds_per_epoch_train']:.1f} s/epoch"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
