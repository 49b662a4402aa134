"""Train and evaluate a session-based backbone, with or without the LLM4SBR intent enhancer.

Protocol: train on ``train.txt``; after every epoch evaluate on ``valid.txt``; keep the model state of
the epoch with the best validation ``--select-metric`` (MRR@20 by default); evaluate ``test.txt`` once,
with that state, at the end. Metrics are averaged over all test sessions (see ``examples/metrics.py``).

With ``--enhancer`` the backbone's ``(h_local, h_global)`` go through
:class:`llm4sbr_adapter.enhancer.IntentEnhancer`; each split has its own intent store (row ids of that
split's pickle, tied to it by ``sessions_sha256``) and the loss is ``CE + out.aux_loss``.

Writes ``--out`` (JSON: config, per-epoch log, best epoch, test metrics, seconds per epoch, peak memory)
and, beside it, ``<out stem>.ranks.npz`` with the per-session test and validation ranks (for paired
bootstrap comparisons in ``examples/summarize.py``).
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import platform
import random
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .backbones import BACKBONES, SessionBackbone
from .metrics import summarize_ranks, target_ranks
from .session_data import SplitData, iterate_batches, load_split

logger = logging.getLogger("examples.train")


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_backbone(name: str, num_items: int, hidden_size: int, gnn_steps: int = 1) -> SessionBackbone:
    if name not in BACKBONES:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(BACKBONES)}")
    if name == "srgnn":
        return BACKBONES[name](num_items, hidden_size, steps=gnn_steps)
    return BACKBONES[name](num_items, hidden_size)


def count_items(data_dir: Path, splits: Sequence[SplitData]) -> int:
    """Catalogue size: rows of ``items.tsv`` when present, else the largest id in the splits."""
    largest = max(s.max_item for s in splits)
    catalogue = data_dir / "items.tsv"
    if catalogue.is_file():
        with open(catalogue, encoding="utf-8") as handle:
            n = sum(1 for line in handle if line.strip()) - 1  # header
        if largest > n:
            raise ValueError(f"{catalogue} lists {n} items but the splits use item id {largest}")
        return n
    return largest


class Session:
    """The model, the optional enhancer and its per-split stores."""

    def __init__(self, backbone: SessionBackbone, enhancer=None, stores: dict | None = None,
                 max_len: int = 0, device: torch.device | str = "cpu") -> None:
        self.backbone = backbone
        self.enhancer = enhancer
        self.stores = stores or {}
        self.max_len = max_len
        self.device = torch.device(device)

    def modules(self) -> list[torch.nn.Module]:
        return [m for m in (self.backbone, self.enhancer) if m is not None]

    def parameters(self) -> list[torch.nn.Parameter]:
        return [p for m in self.modules() for p in m.parameters()]

    def train(self, mode: bool = True) -> None:
        for m in self.modules():
            m.train(mode)

    def use_split(self, split: str) -> None:
        """Bind the enhancer to ``split``'s intent store (row ids are per split)."""
        if self.enhancer is not None:
            self.enhancer.bind_store(self.stores[split])

    def loss_and_scores(self, batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(CE loss, aux loss, scores [B, num_items])`` for one batch."""
        batch = _to_device(batch, self.device)
        h_local, h_global = self.backbone.session_embeddings(batch)
        if self.enhancer is None:
            session = self.backbone.fuse(h_local, h_global)
            aux = session.new_zeros(())
        else:
            out = self.enhancer(h_local, h_global, session_ids=batch.row_ids.cpu())
            session, aux = out.session, out.aux_loss
        scores = self.backbone.scores(session)
        ce = F.cross_entropy(scores, batch.targets - 1)
        return ce, aux, scores

    def state(self) -> dict:
        return {name: copy.deepcopy(m.state_dict()) for name, m in (("backbone", self.backbone), ("enhancer", self.enhancer)) if m is not None}

    def load_state(self, state: dict) -> None:
        self.backbone.load_state_dict(state["backbone"])
        if self.enhancer is not None:
            self.enhancer.load_state_dict(state["enhancer"])

    @torch.no_grad()
    def evaluate(self, data: SplitData, split: str, batch_size: int) -> tuple[np.ndarray, float]:
        """Pessimistic target ranks ``int64 [rows]`` in row order, and the mean CE loss."""
        self.train(False)
        self.use_split(split)
        ranks, total, rows = [], 0.0, 0
        for batch in iterate_batches(data, batch_size, max_len=self.max_len, graph=self.backbone.needs_graph):
            ce, _, scores = self.loss_and_scores(batch)
            ranks.append(target_ranks(scores, batch.targets.to(scores.device) - 1).cpu().numpy())
            total += ce.item() * len(batch.targets)
            rows += len(batch.targets)
        return np.concatenate(ranks), total / max(rows, 1)


def _to_device(batch, device: torch.device):
    if device.type == "cpu":
        return batch
    g = batch.graph
    if g is not None:
        g = type(g)(nodes=g.nodes.to(device), alias=g.alias.to(device), adj_in=g.adj_in.to(device), adj_out=g.adj_out.to(device))
    return type(batch)(row_ids=batch.row_ids, items=batch.items.to(device), mask=batch.mask.to(device),
                       lengths=batch.lengths.to(device), targets=batch.targets.to(device), graph=g)


def open_stores(paths: dict[str, str], data: dict[str, SplitData]) -> dict:
    """Open each split's store, checking it belongs to that split's pickle and covers every row."""
    from llm4sbr_adapter.store import IntentStore, sha256_file

    stores = {}
    for split, path in paths.items():
        if path is None:
            raise ValueError(f"--enhancer needs --store-{split}")
        store = IntentStore.open(path, sessions_sha256=sha256_file(data[split].path))
        _, found = store.rows(np.arange(len(data[split])))
        if not found.all():
            raise ValueError(f"{path}: {int((~found).sum())} of {len(found)} rows of {data[split].path} have no intent")
        stores[split] = store
    first = stores["train"]
    for split, store in stores.items():
        if store.perspectives != first.perspectives or store.text_dim != first.text_dim:
            raise ValueError(f"{store.path} has perspectives {store.perspectives} / dim {store.text_dim}, "
                             f"but {first.path} has {first.perspectives} / {first.text_dim}")
    return stores


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def _atomic_savez(path: Path, **arrays: np.ndarray) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".npz", dir=path.parent)
    os.close(fd)
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Train a session-based recommender (SR-GNN / NARM / STAMP), "
                                "optionally with the LLM4SBR intent enhancer; epoch picked on validation, test once.")
    p.add_argument("--data", required=True, help="folder with train.txt, valid.txt, test.txt (and items.tsv) from examples.prepare_data")
    p.add_argument("--model", choices=sorted(BACKBONES), default="srgnn", help="backbone")
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
    p.add_argument("--enhancer", action=argparse.BooleanOptionalAction, default=False,
                   help="fuse intents from the stores with IntentEnhancer (--no-enhancer: the backbone's own fusion)")
    p.add_argument("--store-train", help="intent store whose ids are the rows of train.txt")
    p.add_argument("--store-valid", help="intent store whose ids are the rows of valid.txt")
    p.add_argument("--store-test", help="intent store whose ids are the rows of test.txt")
    p.add_argument("--fusion", choices=("concat", "gate"), default="concat", help="enhancer fusion")
    p.add_argument("--aux-weight", type=float, default=0.1, help="enhancer loss_weight (alignment + uniformity)")
    p.add_argument("--perspectives", nargs="+", default=None, help="perspectives to use (default: all in the stores)")
    p.add_argument("--topk", type=int, nargs="+", default=[5, 10, 20], help="cut-offs K for HR/MRR/NDCG")
    p.add_argument("--select-metric", default="MRR@20", help="validation metric that picks the epoch")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--device", default="cpu", help="torch device (cpu, cuda)")
    p.add_argument("--out", required=True, help="results JSON path; per-session ranks go to <stem>.ranks.npz beside it")
    p.add_argument("--quiet", action="store_true", help="log only warnings")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> dict:
    """Train, select the epoch on validation, evaluate test once; returns the result dict (also written)."""
    torch.set_num_threads(args.threads)
    set_seed(args.seed)
    data_dir = Path(args.data)
    data = {split: load_split(data_dir / f"{split}.txt") for split in ("train", "valid", "test")}
    num_items = count_items(data_dir, list(data.values()))
    ks = sorted(set(args.topk))
    if args.select_metric.split("@")[0] not in ("HR", "MRR", "NDCG") or int(args.select_metric.split("@")[1]) not in ks:
        raise ValueError(f"--select-metric {args.select_metric!r} must be HR|MRR|NDCG@K with K in --topk {ks}")
    backbone = build_backbone(args.model, num_items, args.hidden_size, args.gnn_steps).to(args.device)
    enhancer, stores = None, {}
    if args.enhancer:
        from llm4sbr_adapter.enhancer import IntentEnhancer, IntentEnhancerConfig

        stores = open_stores({"train": args.store_train, "valid": args.store_valid, "test": args.store_test}, data)
        persp = tuple(args.perspectives or stores["train"].perspectives)
        cfg = IntentEnhancerConfig(hidden_size=args.hidden_size, text_dim=stores["train"].text_dim,
                                   perspectives=persp, fusion=args.fusion, loss_weight=args.aux_weight)
        enhancer = IntentEnhancer(cfg, store=stores["train"]).to(args.device)
    elif any((args.store_train, args.store_valid, args.store_test)):
        logger.warning("--store-* given without --enhancer: the stores are ignored")
    sess = Session(backbone, enhancer, stores, max_len=args.max_len, device=args.device)
    params = sess.parameters()
    optimizer = torch.optim.Adam(params, lr=args.lr, weight_decay=args.l2)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=args.lr_step, gamma=args.lr_gamma)
    rss_before = peak_rss_mb()

    log, best, best_state, best_epoch, waited = [], -1.0, None, 0, 0
    train_seconds, eval_seconds = [], []
    for epoch in range(1, args.epochs + 1):
        sess.train(True)
        sess.use_split("train")
        t0 = time.perf_counter()
        ce_sum, aux_sum, n = 0.0, 0.0, 0
        for batch in iterate_batches(data["train"], args.batch_size, shuffle=True, seed=args.seed * 1000 + epoch,
                                     max_len=args.max_len, graph=backbone.needs_graph):
            ce, aux, _ = sess.loss_and_scores(batch)
            optimizer.zero_grad(set_to_none=True)
            (ce + aux).backward()
            optimizer.step()
            ce_sum += ce.item() * len(batch.targets)
            aux_sum += aux.item() * len(batch.targets)
            n += len(batch.targets)
        scheduler.step()
        train_seconds.append(time.perf_counter() - t0)
        t1 = time.perf_counter()
        valid_ranks, valid_ce = sess.evaluate(data["valid"], "valid", args.batch_size)
        eval_seconds.append(time.perf_counter() - t1)
        valid_metrics = summarize_ranks(valid_ranks, ks)
        score = valid_metrics[args.select_metric]
        log.append({"epoch": epoch, "train_ce": ce_sum / n, "train_aux": aux_sum / n, "valid_ce": valid_ce,
                    "valid": valid_metrics, "train_seconds": train_seconds[-1], "valid_seconds": eval_seconds[-1]})
        logger.info("epoch %d: train CE %.4f aux %.4f | valid %s %.4f HR@20 %.4f | %.1fs", epoch, ce_sum / n,
                    aux_sum / n, args.select_metric, score, valid_metrics.get("HR@20", float("nan")), train_seconds[-1])
        if score > best:
            best, best_state, best_epoch, waited = score, sess.state(), epoch, 0
        else:
            waited += 1
            if args.patience and waited >= args.patience:
                logger.info("no validation improvement for %d epochs: stopping", waited)
                break

    sess.load_state(best_state)
    valid_ranks, _ = sess.evaluate(data["valid"], "valid", args.batch_size)
    t2 = time.perf_counter()
    test_ranks, test_ce = sess.evaluate(data["test"], "test", args.batch_size)
    test_seconds = time.perf_counter() - t2
    result = {
        "model": args.model,
        "enhancer": bool(args.enhancer),
        "seed": args.seed,
        "data": str(data_dir.resolve()),
        "num_items": num_items,
        "rows": {split: len(d) for split, d in data.items()},
        "config": {k: v for k, v in vars(args).items() if k not in ("quiet",)},
        "stores": {split: str(s.path) for split, s in stores.items()},
        "store_text_encoder": stores["train"].metadata.text_encoder if stores else None,
        "parameters": sum(p.numel() for p in params),
        "best_epoch": best_epoch,
        "select_metric": args.select_metric,
        "valid_at_best": summarize_ranks(valid_ranks, ks),
        "test": summarize_ranks(test_ranks, ks),
        "test_ce": test_ce,
        "epochs_run": len(log),
        "seconds_per_epoch_train": float(np.mean(train_seconds)),
        "seconds_per_epoch_valid": float(np.mean(eval_seconds)),
        "seconds_test": test_seconds,
        "peak_rss_mb_before_training": rss_before,
        "peak_rss_mb": peak_rss_mb(),
        "threads": args.threads,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "log": log,
        "ranks_file": None,
    }
    out = Path(args.out)
    ranks_path = out.with_name(out.stem + ".ranks.npz")
    out.parent.mkdir(parents=True, exist_ok=True)
    _atomic_savez(ranks_path, test_ranks=test_ranks.astype(np.int64), valid_ranks=valid_ranks.astype(np.int64),
                  test_targets=data["test"].targets)
    result["ranks_file"] = ranks_path.name
    _atomic_write_text(out, json.dumps(result, indent=2) + "\n")
    return result


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(asctime)s %(message)s",
                        stream=sys.stderr)
    result = run(args)
    metrics = result["test"]
    print(f"{args.model}{' + enhancer' if args.enhancer else ''} seed {args.seed}: best epoch {result['best_epoch']} "
          f"(valid {args.select_metric} {result['valid_at_best'][args.select_metric]:.4f}); test "
          + " ".join(f"{k} {v:.4f}" for k, v in metrics.items())
          + f"; {result['seconds_per_epoch_train']:.1f} s/epoch, peak RSS {result['peak_rss_mb']:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
