"""SR-GNN with the HIPHOP parts from :mod:`llm4sbr_adapter.models`, on the harness's data and protocol.

Same protocol as ``examples/train.py``: train on ``train.txt``, evaluate ``valid.txt`` after every
epoch, keep the state of the best validation ``--select-metric`` epoch, evaluate ``test.txt`` once with
it. Metrics are averaged over all test sessions (``examples/metrics.py``).

Parts (each can be switched on alone):

* ``--semantic init|add``: item-title embeddings (``items.tsv`` encoded by the default sentence
  encoder, cached in ``--encoder-cache``) initialise the item table (``init``) or are added to it
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

    python -m examples.prepare_data movielens --src ../shared/data/ml-100k --out /tmp/ml100k
    python -m examples.hiphop_srgnn --data /tmp/ml100k --semantic add --intents --neighbours \\
        --contrastive --out /tmp/runs/hiphop_all_s0.json
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import logging
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from llm4sbr_adapter.models import (BackboneBatch, HiphopConfig, HiphopHead, SemanticItemEmbedding,
                                    align_text_to_rows)

from .backbones.srgnn import SRGNN
from .metrics import summarize_ranks, target_ranks
from .session_data import Batch, SplitData, iterate_batches, load_split
from .train import _atomic_write_text, _to_device, count_items, open_stores, peak_rss_mb, set_seed

logger = logging.getLogger("examples.hiphop_srgnn")


class SRGNNWithStates(SRGNN):
    """SR-GNN that also returns its per-click states (the harness's SRGNN returns only the two summaries)."""

    def states(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(seq [B, L, d], mask [B, L], h_local [B, d], h_global [B, d])`` (same maths as ``session_embeddings``)."""
        g = batch.graph
        h = self.embedding(g.nodes)
        for _ in range(self.steps):
            h = self.cell(h, g.adj_in, g.adj_out)
        d = h.shape[2]
        seq = torch.gather(h, 1, g.alias.unsqueeze(2).expand(-1, -1, d))
        last = seq[torch.arange(seq.shape[0], device=seq.device), batch.lengths - 1]
        alpha = self.att_out(torch.sigmoid(self.att_last(last).unsqueeze(1) + self.att_item(seq)))
        glob = (alpha * seq * batch.mask.unsqueeze(2)).sum(1)
        return seq * batch.mask.unsqueeze(2), batch.mask, last, glob


def read_titles(path: Path) -> tuple[list[int], list[str]]:
    """``items.tsv`` (``item_id<TAB>title`` with a header) -> ids and titles (``""`` when missing)."""
    ids, titles = [], []
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if header is None or header[:1] != ["item_id"]:
            raise ValueError(f"{path}: line 1: expected the header 'item_id<TAB>title', got {header!r}")
        for lineno, row in enumerate(reader, 2):
            if not row:
                continue
            try:
                ids.append(int(row[0]))
            except ValueError:
                raise ValueError(f"{path}: line {lineno}: item id {row[0]!r} is not an integer") from None
            titles.append(row[1].strip() if len(row) > 1 else "")
    return ids, titles


def title_matrix(data_dir: Path, num_items: int, cache: Path | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Text vectors in embedding-row order ``[num_items + 1, text_dim]`` and the has-title mask."""
    from llm4sbr_adapter.build.encode import TextEncoder, catalogue_embeddings

    ids, titles = read_titles(data_dir / "items.tsv")
    encoder = TextEncoder()
    vectors = catalogue_embeddings(encoder, ids, titles, cache_dir=cache)
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


class HiphopRecommender:
    """Backbone + optional semantic items + HiphopHead + optional IntentEnhancer, with one forward."""

    def __init__(self, args: argparse.Namespace, num_items: int, data: dict[str, SplitData], data_dir: Path) -> None:
        self.args = args
        self.device = torch.device(args.device)
        self.backbone = SRGNNWithStates(num_items, args.hidden_size, steps=args.gnn_steps)
        self.semantic = None
        if args.semantic != "none":
            text, has_text = title_matrix(data_dir, num_items, Path(args.encoder_cache) if args.encoder_cache else None)
            if args.semantic == "init":
                self.semantic = SemanticItemEmbedding(text, args.hidden_size, mode="init", has_text=has_text,
                                                      init_method=args.init_method)
                self.semantic.attach(self.backbone.embedding)  # after SRGNN's reset_uniform(); verified on first use
            else:
                self.semantic = SemanticItemEmbedding(text, args.hidden_size, mode="add", has_text=has_text,
                                                      projection=args.projection, id_embedding=self.backbone.embedding)
                self.backbone.embedding = self.semantic
        self.backbone.to(self.device)
        if self.semantic is not None:
            self.semantic.to(self.device)
        cfg = HiphopConfig(hidden_size=args.hidden_size, use_intents=args.intents, num_intents=args.num_intents,
                           num_heads=args.num_heads, diversity_weight=args.diversity_weight,
                           use_neighbours=args.neighbours, top_m=args.top_m, local_last_n=args.local_last_n,
                           normaliser=args.normaliser, topk=args.topk_attention,
                           attention_scale=args.attention_scale,
                           use_contrastive=args.contrastive, contrastive_weight=args.contrastive_weight,
                           temperature=args.temperature, hard_negatives=args.hard_negatives,
                           num_hard_negatives=args.num_hard_negatives)
        self.head = HiphopHead(cfg).to(self.device)
        self.enhancer, self.stores = None, {}
        if args.enhancer:
            from llm4sbr_adapter.enhancer import IntentEnhancer, IntentEnhancerConfig

            self.stores = open_stores({"train": args.store_train, "valid": args.store_valid, "test": args.store_test}, data)
            ecfg = IntentEnhancerConfig(hidden_size=args.hidden_size, text_dim=self.stores["train"].text_dim,
                                        perspectives=tuple(self.stores["train"].perspectives),
                                        loss_weight=args.aux_weight)
            self.enhancer = IntentEnhancer(ecfg, store=self.stores["train"]).to(self.device)
        self.groups = torch.from_numpy(user_groups(data_dir)) if args.group_by_user else None
        self.nonzero_sum: dict[str, float] = {}
        self.nonzero_rows = 0

    def modules(self) -> list[torch.nn.Module]:
        return [m for m in (self.backbone, self.head, self.enhancer) if m is not None]

    def parameters(self) -> list[torch.nn.Parameter]:
        seen, out = set(), []
        for m in self.modules():
            for p in m.parameters():
                if id(p) not in seen:
                    seen.add(id(p))
                    out.append(p)
        return out

    def train(self, mode: bool = True) -> None:
        for m in self.modules():
            m.train(mode)

    def use_split(self, split: str) -> None:
        if self.enhancer is not None:
            self.enhancer.bind_store(self.stores[split])

    def encode(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(seq, mask, session, external intent or None, enhancer aux loss)``."""
        seq, mask, last, glob = self.backbone.states(batch)
        if self.enhancer is None:
            return seq, mask, self.backbone.fuse(last, glob), None, last.new_zeros(())
        out = self.enhancer(last, glob, session_ids=batch.row_ids.cpu())
        return seq, mask, out.session, out.session, out.aux_loss

    def refresh_bank(self, train: SplitData) -> None:
        """Rebuild the neighbour bank from the training split with the current weights (bank = train only)."""
        if self.head.bank is None:
            return
        self.use_split("train")

        def run(batch: Batch) -> BackboneBatch:
            batch = _to_device(batch, self.device)
            seq, mask, session, _, _ = self.encode(batch)
            rows = batch.row_ids.cpu()
            return BackboneBatch(seq, mask, session, ids=rows,
                                 groups=self.groups[rows] if self.groups is not None else None,
                                 targets=batch.targets.cpu())

        batches = iterate_batches(train, self.args.batch_size, max_len=self.args.max_len, graph=True)
        was = self.backbone.training
        self.train(False)
        self.head.refresh_bank(batches, run, model=self.head, progress=False)
        self.train(was)

    def loss_and_scores(self, batch: Batch, training: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        batch = _to_device(batch, self.device)
        seq, mask, session, intent, aux = self.encode(batch)
        if training:  # training rows are in the bank: exclude themselves (and their user's other rows)
            rows = batch.row_ids.cpu()
            out = self.head(seq, mask, session, intent=intent, session_ids=rows,
                            groups=self.groups[rows] if self.groups is not None else None,
                            targets=batch.targets)
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

    @torch.no_grad()
    def evaluate(self, data: SplitData, split: str) -> tuple[np.ndarray, float]:
        self.train(False)
        self.use_split(split)
        ranks, total, rows = [], 0.0, 0
        for batch in iterate_batches(data, self.args.batch_size, max_len=self.args.max_len, graph=True):
            ce, _, scores = self.loss_and_scores(batch, training=False)
            ranks.append(target_ranks(scores, batch.targets.to(scores.device) - 1).cpu().numpy())
            total += float(ce) * len(batch.targets)
            rows += len(batch.targets)
        return np.concatenate(ranks), total / max(rows, 1)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="SR-GNN + HIPHOP parts (semantic items, multi-intent, intent-guided "
                                "neighbours, contrastive); epoch picked on validation, test evaluated once.")
    p.add_argument("--data", required=True, help="folder with train.txt, valid.txt, test.txt, items.tsv (examples.prepare_data)")
    p.add_argument("--epochs", type=int, default=10, help="maximum number of training epochs")
    p.add_argument("--patience", type=int, default=3, help="stop after this many epochs without a better validation score (0 = never)")
    p.add_argument("--seed", type=int, default=0, help="seed for initialisation, shuffling and dropout")
    p.add_argument("--batch-size", type=int, default=100, help="training and evaluation batch size")
    p.add_argument("--hidden-size", type=int, default=100, help="embedding / hidden width d")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument("--lr-step", type=int, default=3, help="multiply the learning rate by --lr-gamma every this many epochs")
    p.add_argument("--lr-gamma", type=float, default=0.1, help="learning-rate decay factor")
    p.add_argument("--l2", type=float, default=1e-5, help="Adam weight decay")
    p.add_argument("--gnn-steps", type=int, default=1, help="SR-GNN propagation steps")
    p.add_argument("--max-len", type=int, default=0, help="keep only the last this many clicks of each input (0 = all)")
    p.add_argument("--semantic", choices=("none", "init", "add"), default="none",
                   help="item-title semantics: initialise the item table from the titles, or add a projected title vector")
    p.add_argument("--init-method", choices=("pca", "random"), default="pca", help="fixed projection for --semantic init")
    p.add_argument("--projection", choices=("linear", "mlp"), default="linear", help="trainable projection for --semantic add")
    p.add_argument("--encoder-cache", default=None, help="folder to cache the title embeddings in (outside the checkout)")
    p.add_argument("--intents", action=argparse.BooleanOptionalAction, default=False, help="multi-intent capture")
    p.add_argument("--num-intents", type=int, default=4, help="K intent queries")
    p.add_argument("--num-heads", type=int, default=1, help="heads of the intent-over-clicks attention")
    p.add_argument("--diversity-weight", type=float, default=0.0, help="weight of the intent diversity regulariser")
    p.add_argument("--neighbours", action=argparse.BooleanOptionalAction, default=False, help="intent-guided training neighbours")
    p.add_argument("--top-m", type=int, default=10, help="neighbours per level")
    p.add_argument("--local-last-n", type=int, default=3, help="clicks averaged for the local level")
    p.add_argument("--normaliser", choices=("entmax15", "sparsemax", "topk", "softmax"), default="entmax15",
                   help="neighbour attention normaliser (softmax = dense baseline)")
    p.add_argument("--attention-scale", type=float, default=1.0,
                   help="initial (learned) score scale of the neighbour attention; larger starts sparser")
    p.add_argument("--topk-attention", type=int, default=None, help="k for --normaliser topk")
    p.add_argument("--group-by-user", action="store_true",
                   help="during training also exclude neighbours of the same user (rows_train.tsv): for prefix-augmented data")
    p.add_argument("--contrastive", action=argparse.BooleanOptionalAction, default=False,
                   help="InfoNCE between SR-GNN's session vector and the neighbour view (needs --neighbours)")
    p.add_argument("--contrastive-weight", type=float, default=0.1, help="weight of the contrastive loss")
    p.add_argument("--temperature", type=float, default=0.2, help="InfoNCE temperature")
    p.add_argument("--hard-negatives", choices=("none", "bank", "batch"), default="none", help="hard-negative source")
    p.add_argument("--num-hard-negatives", type=int, default=0, help="hard negatives per row")
    p.add_argument("--enhancer", action=argparse.BooleanOptionalAction, default=False,
                   help="LLM4SBR IntentEnhancer with the --store-* intent stores replaces SR-GNN's fusion")
    p.add_argument("--store-train", help="intent store whose ids are the rows of train.txt")
    p.add_argument("--store-valid", help="intent store whose ids are the rows of valid.txt")
    p.add_argument("--store-test", help="intent store whose ids are the rows of test.txt")
    p.add_argument("--aux-weight", type=float, default=0.1, help="enhancer loss_weight")
    p.add_argument("--topk", type=int, nargs="+", default=[5, 10, 20], help="cut-offs K for HR/MRR/NDCG")
    p.add_argument("--select-metric", default="MRR@20", help="validation metric that picks the epoch")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--device", default="cpu", help="torch device (cpu, cuda)")
    p.add_argument("--out", required=True, help="results JSON path; per-session ranks go to <stem>.ranks.npz beside it")
    p.add_argument("--quiet", action="store_true", help="log only warnings")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    set_seed(args.seed)
    data_dir = Path(args.data)
    data = {split: load_split(data_dir / f"{split}.txt") for split in ("train", "valid", "test")}
    num_items = count_items(data_dir, list(data.values()))
    ks = sorted(set(args.topk))
    model = HiphopRecommender(args, num_items, data, data_dir)
    params = model.parameters()
    optimizer = torch.optim.Adam(params, lr=args.lr, weight_decay=args.l2)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=args.lr_step, gamma=args.lr_gamma)
    log, best, best_state, best_epoch, waited, train_seconds = [], -1.0, None, 0, 0, []
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        model.refresh_bank(data["train"])
        model.train(True)
        model.use_split("train")
        sums, n = {"ce": 0.0, "aux": 0.0}, 0
        for batch in iterate_batches(data["train"], args.batch_size, shuffle=True, seed=args.seed * 1000 + epoch,
                                     max_len=args.max_len, graph=True):
            ce, aux, _ = model.loss_and_scores(batch, training=True)
            optimizer.zero_grad(set_to_none=True)
            (ce + aux).backward()
            optimizer.step()
            sums["ce"] += float(ce.detach()) * len(batch.targets)
            sums["aux"] += float(aux.detach()) * len(batch.targets)
            n += len(batch.targets)
        scheduler.step()
        train_seconds.append(time.perf_counter() - t0)
        valid_ranks, valid_ce = model.evaluate(data["valid"], "valid")
        vm = summarize_ranks(valid_ranks, ks)
        score = vm[args.select_metric]
        log.append({"epoch": epoch, "train_ce": sums["ce"] / n, "train_aux": sums["aux"] / n, "valid_ce": valid_ce,
                    "valid": vm, "train_seconds": train_seconds[-1]})
        logger.info("epoch %d: train CE %.4f aux %.4f | valid %s %.4f HR@20 %.4f | %.1fs", epoch, sums["ce"] / n,
                    sums["aux"] / n, args.select_metric, score, vm.get("HR@20", float("nan")), train_seconds[-1])
        if score > best:
            best, best_state, best_epoch, waited = score, model.state(), epoch, 0
        else:
            waited += 1
            if args.patience and waited >= args.patience:
                break
    model.load_state(best_state)
    model.refresh_bank(data["train"])  # the bank is not part of the state: rebuild it for the selected weights
    valid_ranks, _ = model.evaluate(data["valid"], "valid")
    model.nonzero_sum, model.nonzero_rows = {}, 0
    test_ranks, test_ce = model.evaluate(data["test"], "test")
    nonzero = {lv: v / max(model.nonzero_rows, 1) for lv, v in model.nonzero_sum.items()}
    result = {
        "model": "srgnn+hiphop",
        "parts": {"semantic": args.semantic, "intents": args.intents, "neighbours": args.neighbours,
                  "contrastive": args.contrastive, "enhancer": args.enhancer},
        "seed": args.seed, "data": str(data_dir.resolve()), "num_items": num_items,
        "rows": {s: len(d) for s, d in data.items()},
        "config": {k: v for k, v in vars(args).items() if k != "quiet"},
        "parameters": sum(p.numel() for p in params),
        "best_epoch": best_epoch, "select_metric": args.select_metric,
        "valid_at_best": summarize_ranks(valid_ranks, ks), "test": summarize_ranks(test_ranks, ks), "test_ce": test_ce,
        "test_mean_nonzero_neighbours": nonzero,
        "epochs_run": len(log), "seconds_per_epoch_train": float(np.mean(train_seconds)),
        "peak_rss_mb": peak_rss_mb(), "threads": args.threads, "torch": torch.__version__, "log": log,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    ranks_path = out.with_name(out.stem + ".ranks.npz")
    np.savez_compressed(ranks_path, test_ranks=test_ranks.astype(np.int64), valid_ranks=valid_ranks.astype(np.int64))
    result["ranks_file"] = ranks_path.name
    _atomic_write_text(out, json.dumps(result, indent=2) + "\n")
    return result


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(asctime)s %(message)s",
                        stream=sys.stderr)
    result = run(args)
    parts = "+".join(k for k, v in result["parts"].items() if v not in (False, "none")) or "plain"
    print(f"srgnn[{parts}] seed {args.seed}: best epoch {result['best_epoch']} (valid {args.select_metric} "
          f"{result['valid_at_best'][args.select_metric]:.4f}); test "
          + " ".join(f"{k} {v:.4f}" for k, v in result["test"].items())
          + f"; {result['seconds_per_epoch_train']:.1f} s/epoch")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
