"""Train and evaluate a session-based backbone, with or without the LLM4SBR intent enhancer.

Protocol: train on ``train.txt``; after every epoch evaluate on ``valid.txt``; keep the model state of
the epoch with the best validation ``--select-metric`` (MRR@20 by default); evaluate ``test.txt`` once,
with that state, at the end. Metrics are averaged over all test sessions (see ``llm4sbr_adapter/experiments/metrics.py``).

With ``--enhancer`` the backbone's ``(h_local, h_global)`` go through
:class:`llm4sbr_adapter.enhancer.IntentEnhancer`; each split has its own intent store (row ids of that
split's pickle, tied to it by ``sessions_sha256``) and the loss is ``CE + out.aux_loss``.

Writes ``--out`` (JSON: config, per-epoch log, best epoch, test metrics, seconds per epoch, peak memory)
and, beside it, ``<out stem>.ranks.npz`` with the per-session test and validation ranks (for paired
bootstrap comparisons in ``llm4sbr_adapter/experiments/summarize.py``).

The loop itself is :func:`fit_and_evaluate`, shared with ``llm4sbr_adapter/experiments/hiphop_srgnn.py``: any model that
follows the small :class:`Recommender` protocol can be trained and evaluated by it.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import platform
import random
import resource
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

from llm4sbr_adapter.atomic_files import atomic_path, atomic_write_text

from .backbones import BACKBONES, SessionBackbone
from .catalogue import count_items
from .intent_stores import open_stores
from .metrics import summarize_ranks, target_ranks
from .session_data import Batch, SplitData, batch_to_device, iterate_batches, load_split

logger = logging.getLogger("llm4sbr_adapter.experiments.train")


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def set_seed(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (initialisation and dropout)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_backbone(name: str, num_items: int, hidden_size: int, gnn_steps: int = 1) -> SessionBackbone:
    if name not in BACKBONES:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(BACKBONES)}")
    if name == "srgnn":
        return BACKBONES[name](num_items, hidden_size, steps=gnn_steps)
    return BACKBONES[name](num_items, hidden_size)


class Recommender(Protocol):
    """What :func:`fit_and_evaluate` needs from a model (``Session`` below, ``HiphopRecommender`` in hiphop_srgnn).

    ``needs_graph``: batches must carry SR-GNN session graphs. ``parameters()``: the trainable parameters,
    each once. ``train(mode)``: switch every module. ``use_split(name)``: bind per-split resources (the
    enhancer's intent store of ``"train"``/``"valid"``/``"test"``) before a pass over that split.
    ``loss_and_scores(batch, training)``: ``(CE loss, auxiliary loss, scores [B, num_items])``; ``training``
    is true only for optimisation steps on the training split. ``state()`` / ``load_state(state)``: a deep
    copy of all weights and its restore (anything not in the state, such as a neighbour bank, is rebuilt by
    the ``on_restore`` hook of :func:`fit_and_evaluate`).
    """

    needs_graph: bool

    def parameters(self) -> list[torch.nn.Parameter]: ...

    def train(self, mode: bool = True) -> None: ...

    def use_split(self, split: str) -> None: ...

    def loss_and_scores(self, batch: Batch, training: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]: ...

    def state(self) -> dict: ...

    def load_state(self, state: dict) -> None: ...


class RecommenderModules:
    """The parts of a :class:`Recommender` that only depend on its list of modules and the optional enhancer.

    Subclasses implement :meth:`modules` and set ``enhancer`` (an ``IntentEnhancer`` or ``None``) and
    ``stores`` (``{split: IntentStore}``, filled when there is an enhancer).
    """

    enhancer = None
    stores: dict

    def modules(self) -> list[torch.nn.Module]:
        raise NotImplementedError

    def parameters(self) -> list[torch.nn.Parameter]:
        """Trainable parameters of all modules, each once (modules may share one, e.g. an item table)."""
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
        """Bind the enhancer to ``split``'s intent store (row ids are per split).

        Forgetting it is an error, not a silent mix-up: each batch names its pickle and the enhancer
        refuses a bound store whose ``sessions_sha256`` is another file's.
        """
        if self.enhancer is not None:
            self.enhancer.bind_store(self.stores[split])


class Session(RecommenderModules):
    """The model, the optional enhancer and its per-split stores (a :class:`Recommender`)."""

    def __init__(
        self, backbone: SessionBackbone, enhancer=None, stores: dict | None = None, device: torch.device | str = "cpu"
    ) -> None:
        self.backbone = backbone
        self.enhancer = enhancer
        self.stores = stores or {}
        self.device = torch.device(device)

    @property
    def needs_graph(self) -> bool:
        return self.backbone.needs_graph

    def modules(self) -> list[torch.nn.Module]:
        return [m for m in (self.backbone, self.enhancer) if m is not None]

    def loss_and_scores(self, batch: Batch, training: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(CE loss, aux loss, scores [B, num_items])`` for one batch (the same computation in every mode)."""
        batch = batch_to_device(batch, self.device)
        h_local, h_global = self.backbone.session_embeddings(batch)
        if self.enhancer is None:
            session = self.backbone.fuse(h_local, h_global)
            aux = session.new_zeros(())
        else:
            out = self.enhancer(
                h_local,
                h_global,
                session_ids=batch.row_ids.cpu(),
                sessions_sha256=batch.sessions_sha256,
                sessions_source=batch.sessions_source,
            )
            session, aux = out.session, out.aux_loss
        scores = self.backbone.scores(session)
        ce = F.cross_entropy(scores, batch.targets - 1)
        return ce, aux, scores

    def state(self) -> dict:
        return {
            name: copy.deepcopy(m.state_dict())
            for name, m in (("backbone", self.backbone), ("enhancer", self.enhancer))
            if m is not None
        }

    def load_state(self, state: dict) -> None:
        self.backbone.load_state_dict(state["backbone"])
        if self.enhancer is not None:
            self.enhancer.load_state_dict(state["enhancer"])


@torch.no_grad()
def evaluate(
    model: Recommender, data: SplitData, split: str, *, batch_size: int, max_len: int = 0
) -> tuple[np.ndarray, float]:
    """Pessimistic target ranks ``int64 [rows]`` of ``data`` in row order, and the mean CE loss (eval mode)."""
    model.train(False)
    model.use_split(split)
    ranks, total, rows = [], 0.0, 0
    for batch in iterate_batches(data, batch_size, max_len=max_len, graph=model.needs_graph):
        ce, _, scores = model.loss_and_scores(batch, training=False)
        ranks.append(target_ranks(scores, batch.targets.to(scores.device) - 1).cpu().numpy())
        total += ce.item() * len(batch.targets)
        rows += len(batch.targets)
    return np.concatenate(ranks), total / max(rows, 1)


def check_select_metric(name: str, ks: Sequence[int]) -> None:
    """Raise ``ValueError`` unless ``name`` is ``HR|MRR|NDCG@K`` with ``K`` in ``ks``."""
    kind, _, k = name.partition("@")
    if kind not in ("HR", "MRR", "NDCG") or not k.isdigit() or int(k) not in ks:
        raise ValueError(f"--select-metric {name!r} must be HR|MRR|NDCG@K with K in --topk {sorted(ks)}")


def atomic_savez(path: str | Path, **arrays: np.ndarray) -> None:
    """``np.savez_compressed(path, **arrays)``, written atomically."""
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez_compressed(tmp, **arrays)


def fit_and_evaluate(
    model: Recommender,
    data: Mapping[str, SplitData],
    args: argparse.Namespace,
    *,
    fields: Mapping[str, object] | None = None,
    on_epoch_start: Callable[[int], None] | None = None,
    on_restore: Callable[[], None] | None = None,
    extra_results: Callable[[], Mapping[str, object]] | None = None,
) -> dict:
    """Train ``model``, pick the epoch on validation, evaluate test once, write the results; returns them.

    The one training/evaluation loop of the examples. Per epoch: ``on_epoch_start(epoch)`` (e.g. rebuild a
    neighbour bank; timed as training), one shuffled pass over ``data["train"]`` (Adam on ``CE + aux``, the
    StepLR schedule stepped once per epoch), then a pass over ``data["valid"]``. The state of the epoch with
    the best validation ``args.select_metric`` is kept; training stops after ``args.patience`` epochs
    without improvement (0 = never). Then the best state is loaded, ``on_restore()`` rebuilds whatever is
    not part of it, validation is evaluated again and ``data["test"]`` exactly once.

    ``args`` supplies ``epochs, patience, seed, batch_size, lr, lr_step, lr_gamma, l2, max_len, topk,
    select_metric, threads, data, out``. The result JSON (``args.out``, written atomically) holds
    ``fields`` (script-specific entries such as the model name), the run's config, per-epoch log, best
    epoch, validation and test metrics, timings, peak memory, and then ``extra_results()`` (read after the
    test pass). Per-session ranks (``test_ranks``, ``valid_ranks`` ``int64 [rows]``, ``test_targets``) go
    to ``<out stem>.ranks.npz`` beside it.
    """
    ks = sorted(set(args.topk))
    check_select_metric(args.select_metric, ks)
    params = model.parameters()
    # fused=True: one kernel per step instead of a dozen passes over the item table (same update rule;
    # 15.7 ms -> 0.55 ms per step for a 12,102 x 100 table on one CPU thread)
    optimizer = torch.optim.Adam(params, lr=args.lr, weight_decay=args.l2, fused=True)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=args.lr_step, gamma=args.lr_gamma)
    rss_before = peak_rss_mb()

    log, best, best_state, best_epoch, waited = [], -1.0, None, 0, 0
    train_seconds, eval_seconds = [], []
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        if on_epoch_start is not None:
            on_epoch_start(epoch)
        model.train(True)
        model.use_split("train")
        ce_sum, aux_sum, n = 0.0, 0.0, 0
        for batch in iterate_batches(
            data["train"],
            args.batch_size,
            shuffle=True,
            seed=args.seed * 1000 + epoch,
            max_len=args.max_len,
            graph=model.needs_graph,
        ):
            ce, aux, _ = model.loss_and_scores(batch, training=True)
            optimizer.zero_grad(set_to_none=True)
            (ce + aux).backward()
            optimizer.step()
            ce_sum += ce.item() * len(batch.targets)
            aux_sum += aux.item() * len(batch.targets)
            n += len(batch.targets)
        scheduler.step()
        train_seconds.append(time.perf_counter() - t0)
        t1 = time.perf_counter()
        valid_ranks, valid_ce = evaluate(
            model, data["valid"], "valid", batch_size=args.batch_size, max_len=args.max_len
        )
        eval_seconds.append(time.perf_counter() - t1)
        valid_metrics = summarize_ranks(valid_ranks, ks)
        score = valid_metrics[args.select_metric]
        log.append(
            {
                "epoch": epoch,
                "train_ce": ce_sum / n,
                "train_aux": aux_sum / n,
                "valid_ce": valid_ce,
                "valid": valid_metrics,
                "train_seconds": train_seconds[-1],
                "valid_seconds": eval_seconds[-1],
            }
        )
        logger.info(
            "epoch %d: train CE %.4f aux %.4f | valid %s %.4f HR@20 %.4f | %.1fs",
            epoch,
            ce_sum / n,
            aux_sum / n,
            args.select_metric,
            score,
            valid_metrics.get("HR@20", float("nan")),
            train_seconds[-1],
        )
        if score > best:
            best, best_state, best_epoch, waited = score, model.state(), epoch, 0
        else:
            waited += 1
            if args.patience and waited >= args.patience:
                logger.info("no validation improvement for %d epochs: stopping", waited)
                break

    model.load_state(best_state)
    if on_restore is not None:
        on_restore()
    valid_ranks, _ = evaluate(model, data["valid"], "valid", batch_size=args.batch_size, max_len=args.max_len)
    t2 = time.perf_counter()
    test_ranks, test_ce = evaluate(model, data["test"], "test", batch_size=args.batch_size, max_len=args.max_len)
    test_seconds = time.perf_counter() - t2
    result = {
        **(fields or {}),
        "seed": args.seed,
        "data": str(Path(args.data).resolve()),
        "rows": {split: len(d) for split, d in data.items()},
        "config": {k: v for k, v in vars(args).items() if k not in ("quiet",)},
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
        **(extra_results() if extra_results is not None else {}),
        "log": log,
        "ranks_file": None,
    }
    out = Path(args.out)
    ranks_path = out.with_name(out.stem + ".ranks.npz")
    atomic_savez(
        ranks_path,
        test_ranks=test_ranks.astype(np.int64),
        valid_ranks=valid_ranks.astype(np.int64),
        test_targets=data["test"].targets,
    )
    result["ranks_file"] = ranks_path.name
    atomic_write_text(out, json.dumps(result, indent=2) + "\n")
    return result


def add_training_flags(p: argparse.ArgumentParser) -> None:
    """The flags for the schedule, optimiser, SR-GNN size and input length (read by :func:`fit_and_evaluate`)."""
    p.add_argument("--epochs", type=int, default=10, help="maximum number of training epochs")
    p.add_argument(
        "--patience",
        type=int,
        default=3,
        help="stop after this many epochs without a better validation score (0 = never)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed for initialisation, shuffling and dropout")
    p.add_argument("--batch-size", type=int, default=100, help="training and evaluation batch size")
    p.add_argument("--hidden-size", type=int, default=100, help="embedding / hidden width d")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument(
        "--lr-step", type=int, default=3, help="multiply the learning rate by --lr-gamma every this many epochs"
    )
    p.add_argument("--lr-gamma", type=float, default=0.1, help="learning-rate decay factor")
    p.add_argument("--l2", type=float, default=1e-5, help="Adam weight decay")
    p.add_argument("--gnn-steps", type=int, default=1, help="SR-GNN propagation steps")
    p.add_argument("--max-len", type=int, default=0, help="keep only the last this many clicks of each input (0 = all)")


def add_store_flags(p: argparse.ArgumentParser) -> None:
    """``--store-train/valid/test``: one intent store per split (see :func:`llm4sbr_adapter.experiments.intent_stores.open_stores`)."""
    p.add_argument("--store-train", help="intent store whose ids are the rows of train.txt")
    p.add_argument("--store-valid", help="intent store whose ids are the rows of valid.txt")
    p.add_argument("--store-test", help="intent store whose ids are the rows of test.txt")


def add_evaluation_flags(p: argparse.ArgumentParser) -> None:
    """The flags for metrics, epoch selection, device, output and logging (read by :func:`fit_and_evaluate`)."""
    p.add_argument("--topk", type=int, nargs="+", default=[5, 10, 20], help="cut-offs K for HR/MRR/NDCG")
    p.add_argument("--select-metric", default="MRR@20", help="validation metric that picks the epoch")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--device", default="cpu", help="torch device (cpu, cuda)")
    p.add_argument("--out", required=True, help="results JSON path; per-session ranks go to <stem>.ranks.npz beside it")
    p.add_argument("--quiet", action="store_true", help="log only warnings")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Train a session-based recommender (SR-GNN / NARM / STAMP), "
        "optionally with the LLM4SBR intent enhancer; epoch picked on validation, test once."
    )
    p.add_argument(
        "--data",
        required=True,
        help="folder with train.txt, valid.txt, test.txt (and items.tsv) from llm4sbr_adapter.experiments.prepare_data",
    )
    p.add_argument("--model", choices=sorted(BACKBONES), default="srgnn", help="backbone")
    add_training_flags(p)
    p.add_argument(
        "--enhancer",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="fuse intents from the stores with IntentEnhancer (--no-enhancer: the backbone's own fusion)",
    )
    add_store_flags(p)
    p.add_argument("--fusion", choices=("concat", "gate"), default="concat", help="enhancer fusion")
    p.add_argument("--aux-weight", type=float, default=0.1, help="enhancer loss_weight (alignment + uniformity)")
    p.add_argument("--perspectives", nargs="+", default=None, help="perspectives to use (default: all in the stores)")
    add_evaluation_flags(p)
    return p.parse_args(argv)


def load_run_data(args: argparse.Namespace) -> tuple[Path, dict[str, SplitData], int]:
    """Set threads and seed, load the three splits, check ``--select-metric``: ``(data dir, {split: data}, items)``.

    Call it before building the model, so that the model is initialised from ``args.seed``.
    """
    torch.set_num_threads(args.threads)
    set_seed(args.seed)
    data_dir = Path(args.data)
    data = {split: load_split(data_dir / f"{split}.txt") for split in ("train", "valid", "test")}
    num_items = count_items(data_dir, list(data.values()))
    check_select_metric(args.select_metric, sorted(set(args.topk)))
    return data_dir, data, num_items


def run(args: argparse.Namespace) -> dict:
    """Train, select the epoch on validation, evaluate test once; returns the result dict (also written)."""
    _, data, num_items = load_run_data(args)
    backbone = build_backbone(args.model, num_items, args.hidden_size, args.gnn_steps).to(args.device)
    enhancer, stores = None, {}
    if args.enhancer:
        from llm4sbr_adapter.enhancer import IntentEnhancer, IntentEnhancerConfig

        stores = open_stores({"train": args.store_train, "valid": args.store_valid, "test": args.store_test}, data)
        persp = tuple(args.perspectives or stores["train"].perspectives)
        cfg = IntentEnhancerConfig(
            hidden_size=args.hidden_size,
            text_dim=stores["train"].text_dim,
            perspectives=persp,
            fusion=args.fusion,
            loss_weight=args.aux_weight,
        )
        enhancer = IntentEnhancer(cfg, store=stores["train"]).to(args.device)
    elif any((args.store_train, args.store_valid, args.store_test)):
        logger.warning("--store-* given without --enhancer: the stores are ignored")
    sess = Session(backbone, enhancer, stores, device=args.device)
    fields = {
        "model": args.model,
        "enhancer": bool(args.enhancer),
        "num_items": num_items,
        "stores": {split: str(s.path) for split, s in stores.items()},
        "store_text_encoder": stores["train"].metadata.text_encoder if stores else None,
    }
    return fit_and_evaluate(sess, data, args, fields=fields)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr
    )
    result = run(args)
    metrics = result["test"]
    print(
        f"{args.model}{' + enhancer' if args.enhancer else ''} seed {args.seed}: best epoch {result['best_epoch']} "
        f"(valid {args.select_metric} {result['valid_at_best'][args.select_metric]:.4f}); test "
        + " ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        + f"; {result['seconds_per_epoch_train']:.1f} s/epoch, peak RSS {result['peak_rss_mb']:.0f} MiB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
