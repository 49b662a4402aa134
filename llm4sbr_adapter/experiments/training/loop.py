"""The one training and evaluation loop of the experiments, and :class:`TrainConfig`, its settings.

Protocol: train on ``train.txt``; after every epoch evaluate on ``valid.txt``; keep the model state of
the epoch with the best validation ``select_metric`` (MRR@20 by default); evaluate ``test.txt`` once,
with that state, at the end. Metrics are averaged over all test sessions (see
:mod:`llm4sbr_adapter.experiments.evaluation.metrics`).

Any model that follows the small :class:`Recommender` protocol can be trained and evaluated by
:func:`fit_and_evaluate` (``Session`` in :mod:`.recommender`, ``HiphopRecommender`` in :mod:`.hiphop_srgnn`);
the command lines ``llm4sbr_adapter.experiments.training.train`` and ``.hiphop_srgnn`` generate their flags from
:class:`TrainConfig`'s fields.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import platform
import random
import resource
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

import numpy as np
import torch

from llm4sbr_adapter.atomic_files import atomic_write_text
from llm4sbr_adapter.cli_context import note_kept
from llm4sbr_adapter.config import ConfigBase, setting

from ..data.catalogue import count_items
from ..data.prepared_files import require_rows
from ..data.splits import SplitData, load_split
from ..evaluation.metrics import summarize_ranks, target_ranks
from ..evaluation.ranks_file import atomic_savez
from ..models.batching import Batch, iterate_batches
from .epoch_checkpoint import load_checkpoint, restore_rng, run_identity, save_checkpoint
from .run_paths import check_run_paths, checkpoint_path, ranks_path

logger = logging.getLogger("llm4sbr_adapter.experiments.train")

SPLITS = ("train", "valid", "test")


def select_metric_problem(name: str, ks: Sequence[int]) -> str | None:
    """Why ``name`` cannot pick the epoch (it must be ``HR|MRR|NDCG@K`` with ``K`` in ``ks``), or ``None``."""
    kind, _, k = name.partition("@")
    if kind not in ("HR", "MRR", "NDCG") or not k.isdigit() or int(k) not in ks:
        return f"must be HR|MRR|NDCG@K with K in {sorted(ks)}, got {name!r}"
    return None


def check_select_metric(name: str, ks: Sequence[int]) -> None:
    """Raise ``ValueError`` unless ``name`` is ``HR|MRR|NDCG@K`` with ``K`` in ``ks`` (flag-spelled)."""
    problem = select_metric_problem(name, ks)
    if problem is not None:
        raise ValueError(f"--select-metric {problem.replace('K in', 'K in --topk')}")


@dataclass
class TrainConfig(ConfigBase):
    """Settings of one training run: where data and results live, schedule, optimiser, model size, evaluation.

    Each field's help text is in its metadata; the flags of ``llm4sbr_adapter.experiments.training.train`` and
    ``.hiphop_srgnn`` are generated from them (``--batch-size`` for ``batch_size`` and so on).
    """

    FORMAT: ClassVar[str] = "llm4sbr-train-run"

    data: str = setting(
        help="folder with train.txt, valid.txt, test.txt (and items.tsv) from "
        "llm4sbr_adapter.experiments.data.prepare_data"
        "; without valid.txt (the official SR-GNN pickles) validation is carved from train.txt (--valid-from-train)"
    )
    out: str = setting(help="results JSON path; per-session ranks go to <stem>.ranks.npz beside it")
    epochs: int = setting(10, "maximum number of training epochs", minimum=1)
    patience: int = setting(3, "stop after this many epochs without a better validation score (0 = never)", minimum=0)
    seed: int = setting(0, "seed for initialisation, shuffling and dropout")
    batch_size: int = setting(100, "training and evaluation batch size", minimum=1)
    hidden_size: int = setting(100, "embedding / hidden width d", minimum=1)
    lr: float = setting(1e-3, "Adam learning rate", minimum=0.0, exclusive_minimum=True)
    lr_step: int = setting(3, "multiply the learning rate by --lr-gamma every this many epochs", minimum=1)
    lr_gamma: float = setting(0.1, "learning-rate decay factor", minimum=0.0)
    l2: float = setting(1e-5, "Adam weight decay", minimum=0.0)
    gnn_steps: int = setting(1, "SR-GNN propagation steps", minimum=1)
    max_len: int = setting(0, "keep only the last this many clicks of each input (0 = all)", minimum=0)
    topk: tuple[int, ...] = setting((5, 10, 20), "cut-offs K for HR/MRR/NDCG")
    select_metric: str = setting("MRR@20", "validation metric that picks the epoch")
    threads: int = setting(1, "torch CPU threads", minimum=1)
    device: str = setting("cpu", "torch device (cpu, cuda)")
    valid_from_train: Literal["random", "tail"] = setting(
        "random",
        "when --data has no valid.txt: carve validation out of train.txt, a seeded random share of its rows "
        "(random, SR-GNN's --validation rule) or its last rows (tail, the latest sessions in SR-GNN's preprocessing)",
    )
    exclude_seen: Literal["never", "choose"] = setting(
        "never",
        "at evaluation only: never = rank every item; choose = also rank the prefix's own items last, and let "
        "validation decide (per epoch the better of the two counts; the rule that wins on validation at the "
        "chosen epoch is the one test uses), as the simple baselines do",
    )
    valid_share: float = setting(
        0.1,
        "share of train.txt carved as validation when there is no valid.txt",
        minimum=0.0,
        maximum=1.0,
        exclusive_minimum=True,
        exclusive_maximum=True,
    )

    def validate(self) -> None:
        """Cut-offs are positive and the selection metric is one of them."""
        if not self.topk or min(self.topk) < 1:
            self.fail("topk", f"must be one or more positive cut-offs, got {list(self.topk)}")
        problem = select_metric_problem(self.select_metric, sorted(set(self.topk)))
        if problem is not None:
            self.fail("select_metric", problem.replace("K in", f"K in {self.ref('topk')}"))

    @property
    def cutoffs(self) -> list[int]:
        """The cut-offs, sorted, each once."""
        return sorted(set(self.topk))


class Recommender(Protocol):
    """What :func:`fit_and_evaluate` needs from a model (``Session``, ``HiphopRecommender``).

    ``needs_graph``: batches must carry SR-GNN session graphs. ``parameters()``: the trainable parameters,
    each once. ``train(mode)``: switch every module. ``use_split(name)``: bind per-split resources (the
    enhancer's intent store of ``"train"``/``"valid"``/``"test"``) before a pass over that split.
    ``loss_and_scores(batch, training)``: ``(CE loss, auxiliary loss, scores [B, num_items])``; ``training``
    is true only for optimisation steps on the training split. ``state()`` / ``load_state(state)``: a deep
    copy of all weights and its restore (anything not in the state, such as a neighbour bank, is rebuilt by
    the ``on_restore`` hook of :func:`fit_and_evaluate`).
    """

    @property
    def needs_graph(self) -> bool: ...

    def parameters(self) -> list[torch.nn.Parameter]: ...

    def train(self, mode: bool = True) -> None: ...

    def use_split(self, split: str) -> None: ...

    def loss_and_scores(self, batch: Batch, training: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]: ...

    def state(self) -> dict: ...

    def load_state(self, state: dict) -> None: ...


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def tensors_mb(tensors) -> float:
    """MiB held by the given tensors (each counted once)."""
    seen, total = set(), 0
    for t in tensors:
        if isinstance(t, torch.Tensor) and id(t) not in seen:
            seen.add(id(t))
            total += t.numel() * t.element_size()
    return total / 2**20


def model_optimizer_mb(params: Sequence[torch.Tensor], optimizer: torch.optim.Optimizer) -> float:
    """MiB of the trained state: parameters, one gradient per parameter, and the optimiser's state tensors."""
    states = [v for state in optimizer.state.values() for v in state.values()]
    return 2 * tensors_mb(params) + tensors_mb(states)


def set_seed(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (initialisation and dropout)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def load_run_data(config: TrainConfig) -> tuple[Path, dict[str, SplitData], int]:
    """Set threads and seed, load the three splits: ``(data dir, {split: data}, number of items)``.

    Call it before building the model, so that the model is initialised from ``config.seed``.
    """
    check_run_paths(config.data, config.out)
    torch.set_num_threads(config.threads)
    set_seed(config.seed)
    data_dir = Path(config.data)
    data = load_splits(data_dir, config.valid_from_train, config.valid_share, config.seed)
    require_rows(data_dir, data)
    num_items = count_items(data_dir, list(data.values()))
    return data_dir, data, num_items


def load_splits(data_dir: Path, how: str, share: float, seed: int) -> dict[str, SplitData]:
    """train/valid/test of ``data_dir``; without ``valid.txt`` (the official SR-GNN pickles have only
    train.txt and test.txt) validation is carved out of train.txt, and the log says how:

    * ``random``: a seeded random ``share`` of the rows (the rule of SR-GNN's own ``--validation``; prefixes
      of one session can fall on both sides);
    * ``tail``: the last ``share`` of the rows (SR-GNN's preprocessing writes train.txt in time order, so
      these are the latest training sessions: the temporal protocol's choice).

    Carved rows keep their train.txt row ids, so both parts are looked up in the train intent store.
    """
    if (data_dir / "valid.txt").is_file() or not (data_dir / "train.txt").is_file():
        return {split: load_split(data_dir / f"{split}.txt") for split in SPLITS}
    train = load_split(data_dir / "train.txt")
    n_valid = max(1, int(round(share * len(train))))
    if how == "tail":
        valid_rows = np.arange(len(train) - n_valid, len(train))
        rule = f"the last {share:.0%} of its rows (tail; time order in SR-GNN's preprocessing)"
    elif how == "random":
        valid_rows = np.sort(np.random.default_rng(seed).choice(len(train), size=n_valid, replace=False))
        rule = f"a random {share:.0%} of its rows (numpy default_rng({seed}); SR-GNN's --validation rule)"
    else:
        raise ValueError(f"--valid-from-train must be 'random' or 'tail', got {how!r}")
    keep = np.setdiff1d(np.arange(len(train)), valid_rows)
    logger.warning(
        "%s has no valid.txt: validation = %d rows of train.txt, %s; training on the other %d rows",
        data_dir,
        n_valid,
        rule,
        len(keep),
    )
    return {"train": train.subset(keep), "valid": train.subset(valid_rows), "test": load_split(data_dir / "test.txt")}


def prefix_items_last(scores: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    """A copy of ``scores [B, N]`` in which each row's prefix items (``items [B, L]``, 0 = padding) score -inf."""
    out = scores.clone()
    rows = torch.arange(items.shape[0], device=items.device).unsqueeze(1).expand_as(items)
    real = items > 0
    out[rows[real], items[real] - 1] = float("-inf")
    return out


@torch.no_grad()
def evaluate(
    model: Recommender, data: SplitData, split: str, *, batch_size: int, max_len: int = 0, prefix_last: bool = False
) -> tuple[np.ndarray, float, np.ndarray | None]:
    """Pessimistic target ranks ``int64 [rows]`` of ``data`` in row order, the mean CE loss (eval mode), and with
    ``prefix_last`` the ranks when the prefix's own items rank last (a target in its prefix ranks last), else None."""
    model.train(False)
    model.use_split(split)
    ranks, last, total, rows = [], [], 0.0, 0
    for batch in iterate_batches(data, batch_size, max_len=max_len, graph=model.needs_graph):
        ce, _, scores = model.loss_and_scores(batch, training=False)
        targets = batch.targets.to(scores.device) - 1
        ranks.append(target_ranks(scores, targets).cpu().numpy())
        if prefix_last:
            last.append(target_ranks(prefix_items_last(scores, batch.items.to(scores.device)), targets).cpu().numpy())
        total += ce.item() * len(batch.targets)
        rows += len(batch.targets)
    return np.concatenate(ranks), total / max(rows, 1), np.concatenate(last) if prefix_last else None


def choose_prefix_rule(
    ranks: np.ndarray, last: np.ndarray | None, ks: Sequence[int], metric: str
) -> tuple[bool, dict[str, float]]:
    """``(rank the prefix last?, the metrics under that rule)``: ranking the prefix last must beat keeping it."""
    kept = summarize_ranks(ranks, ks)
    if last is None:
        return False, kept
    excluded = summarize_ranks(last, ks)
    return (True, excluded) if excluded[metric] > kept[metric] else (False, kept)


def train_epoch(
    model: Recommender, data: SplitData, config: TrainConfig, epoch: int, optimizer: torch.optim.Optimizer
) -> tuple[float, float]:
    """One shuffled pass over the training split (Adam on ``CE + aux``): mean CE and mean aux loss per row."""
    model.train(True)
    model.use_split("train")
    ce_sum, aux_sum, n = 0.0, 0.0, 0
    batches = iterate_batches(
        data,
        config.batch_size,
        shuffle=True,
        seed=config.seed * 1000 + epoch,
        max_len=config.max_len,
        graph=model.needs_graph,
    )
    for batch in batches:
        ce, aux, _ = model.loss_and_scores(batch, training=True)
        optimizer.zero_grad(set_to_none=True)
        (ce + aux).backward()
        optimizer.step()
        ce_sum += ce.item() * len(batch.targets)
        aux_sum += aux.item() * len(batch.targets)
        n += len(batch.targets)
    return ce_sum / n, aux_sum / n


def _validate(model: Recommender, data: SplitData, config: TrainConfig) -> tuple[float, dict]:
    """One validation pass: the score that selects epochs (with ``exclude_seen="choose"`` the better of keeping the
    prefix's items and ranking them last) and the log entries ``valid_ce``, ``valid`` (and ``valid_prefix_last``)."""
    choose = config.exclude_seen == "choose"
    ranks, ce, last = evaluate(
        model, data, "valid", batch_size=config.batch_size, max_len=config.max_len, prefix_last=choose
    )
    entries = {"valid_ce": ce, "valid": summarize_ranks(ranks, config.cutoffs)}
    if last is not None:
        entries["valid_prefix_last"] = summarize_ranks(last, config.cutoffs)
    return choose_prefix_rule(ranks, last, config.cutoffs, config.select_metric)[1][config.select_metric], entries


@dataclass
class _Fit:
    """What the epochs leave behind: per-epoch log, the selected state, timings and the patience count."""

    log: list = field(default_factory=list)
    best_state: dict | None = None
    best_epoch: int = 0
    train_seconds: list = field(default_factory=list)
    eval_seconds: list = field(default_factory=list)
    train_cpu_seconds: list = field(default_factory=list)  # CPU seconds (time.process_time), robust to other jobs
    best: float = -1.0  # the best validation score so far (metrics are >= 0: epoch 1 always beats it)
    waited: int = 0  # epochs since the best one
    stopped: bool = False  # patience ran out
    resumed_after: int = 0  # epochs a checkpoint brought in (0: none)


@dataclass
class _Trainer:
    """The objects one run's epochs update, and where they are saved after each epoch."""

    model: Recommender
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    checkpoint: Path
    identity: dict

    @classmethod
    def build(cls, model: Recommender, params: list, config: TrainConfig, identity: dict) -> _Trainer:
        """Adam and SR-GNN's step schedule over ``params``; the checkpoint beside ``config.out``."""
        # fused=True: one kernel per step instead of a dozen passes over the item table (same update rule;
        # 15.7 ms -> 0.55 ms per step for a 12,102 x 100 table on one CPU thread)
        optimizer = torch.optim.Adam(params, lr=config.lr, weight_decay=config.l2, fused=True)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.lr_step, gamma=config.lr_gamma)
        return cls(model, optimizer, scheduler, checkpoint_path(config.out), identity)

    def save(self, fit: _Fit) -> None:
        contents = {
            "model": self.model.state(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "fit": vars(fit),
        }
        save_checkpoint(self.checkpoint, self.identity, contents)
        note_kept(f"the epochs finished so far, in {self.checkpoint}")

    def start(self) -> _Fit:
        """A fresh fit, or the checkpoint's with the model, optimiser, schedule and generators it saved."""
        saved = load_checkpoint(self.checkpoint, self.identity)
        if saved is None:
            return _Fit()
        self.model.load_state(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scheduler.load_state_dict(saved["scheduler"])
        restore_rng(saved["rng"])
        return dataclasses.replace(_Fit(**saved["fit"]), resumed_after=len(saved["fit"]["log"]))


def _fit(
    trainer: _Trainer,
    data: Mapping[str, SplitData],
    config: TrainConfig,
    on_epoch_start: Callable[[int], None] | None,
) -> _Fit:
    """The epochs (after the checkpoint's, if any): train, validate, keep the best state, save the checkpoint;
    stop early after ``patience`` epochs without gain."""
    fit = trainer.start()
    while not fit.stopped and len(fit.log) < config.epochs:
        epoch = len(fit.log) + 1
        t0, c0 = time.perf_counter(), time.process_time()
        if on_epoch_start is not None:
            on_epoch_start(epoch)
        train_ce, train_aux = train_epoch(trainer.model, data["train"], config, epoch, trainer.optimizer)
        trainer.scheduler.step()
        fit.train_seconds.append(time.perf_counter() - t0)
        fit.train_cpu_seconds.append(time.process_time() - c0)
        t1 = time.perf_counter()
        score, valid = _validate(trainer.model, data["valid"], config)
        fit.eval_seconds.append(time.perf_counter() - t1)
        fit.log.append(
            {
                "epoch": epoch,
                "train_ce": train_ce,
                "train_aux": train_aux,
                **valid,
                "train_seconds": fit.train_seconds[-1],
                "valid_seconds": fit.eval_seconds[-1],
            }
        )
        logger.info(
            "epoch %d: train CE %.4f aux %.4f | valid %s %.4f HR@20 %.4f | %.1fs",
            epoch,
            train_ce,
            train_aux,
            config.select_metric,
            score,
            valid["valid"].get("HR@20", float("nan")),
            fit.train_seconds[-1],
        )
        _count_patience(fit, trainer.model, score, epoch, config.patience)
        trainer.save(fit)
    return fit


def _count_patience(fit: _Fit, model: Recommender, score: float, epoch: int, patience: int) -> None:
    """Keep the state of a better epoch; mark the fit stopped after ``patience`` epochs without one (0 = never)."""
    if score > fit.best:
        fit.best, fit.best_state, fit.best_epoch, fit.waited = score, model.state(), epoch, 0
        return
    fit.waited += 1
    if patience and fit.waited >= patience:
        logger.info("no validation improvement for %d epochs: stopping", fit.waited)
        fit.stopped = True


def _final_pass(
    model: Recommender, data: Mapping[str, SplitData], config: TrainConfig
) -> tuple[bool, dict[str, float], np.ndarray, np.ndarray, float, float]:
    """Validation again at the chosen epoch (which picks the prefix rule with ``exclude_seen="choose"``), then test
    once under that rule: ``(prefix last?, valid metrics, valid ranks, test ranks, test CE, test seconds)``."""
    choose = config.exclude_seen == "choose"
    kept, _, last = evaluate(
        model, data["valid"], "valid", batch_size=config.batch_size, max_len=config.max_len, prefix_last=choose
    )
    prefix_last, valid_metrics = choose_prefix_rule(kept, last, config.cutoffs, config.select_metric)
    t0 = time.perf_counter()
    test_kept, test_ce, test_last = evaluate(
        model, data["test"], "test", batch_size=config.batch_size, max_len=config.max_len, prefix_last=prefix_last
    )
    test_seconds = time.perf_counter() - t0
    valid_ranks = last if prefix_last and last is not None else kept
    return (
        prefix_last,
        valid_metrics,
        valid_ranks,
        test_last if test_last is not None else test_kept,
        test_ce,
        test_seconds,
    )


def fit_and_evaluate(
    model: Recommender,
    data: Mapping[str, SplitData],
    config: TrainConfig,
    *,
    fields: Mapping[str, object] | None = None,
    settings: Mapping[str, Any] | None = None,
    on_epoch_start: Callable[[int], None] | None = None,
    on_restore: Callable[[], None] | None = None,
    extra_results: Callable[[], Mapping[str, object]] | None = None,
) -> dict:
    """Train ``model``, pick the epoch on validation, evaluate test once, write the results; returns them.

    Per epoch: ``on_epoch_start(epoch)`` (e.g. rebuild a neighbour bank; timed as training), one shuffled
    pass over ``data["train"]`` (Adam on ``CE + aux``, the StepLR schedule stepped once per epoch), then a
    pass over ``data["valid"]``. The state of the epoch with the best validation ``config.select_metric`` is
    kept; training stops after ``config.patience`` epochs without improvement (0 = never). Then the best
    state is loaded, ``on_restore()`` rebuilds whatever is not part of it, validation is evaluated again and
    ``data["test"]`` exactly once. With ``config.exclude_seen == "choose"`` every validation pass also ranks the
    prefix's own items last (evaluation only; training is unchanged): the better of the two rules scores the
    epoch, and the rule that wins at the chosen epoch is the one test uses (``"prefix_items_last"`` in the result).

    The result JSON (``config.out``, atomic) holds ``fields`` (script-specific entries such as the model name),
    ``settings`` as its ``"config"`` (every setting of the command; default: ``config.to_dict()``), the epoch
    log, best epoch, validation and test metrics, timings, peak memory, then ``extra_results()`` (read after
    the test pass). Per-session ranks (``test_ranks``, ``valid_ranks`` ``int64 [rows]``, ``test_targets``) go
    to ``<out stem>.ranks.npz``. A killed run resumes from ``<out stem>.checkpoint.pt`` (:mod:`.epoch_checkpoint`).
    """
    params = model.parameters()
    record = dict(settings) if settings is not None else config.to_dict()
    trainer = _Trainer.build(model, params, config, run_identity(record, data))
    rss_before = peak_rss_mb()
    fit = _fit(trainer, data, config, on_epoch_start)
    assert fit.best_state is not None  # epoch 1 always beats the initial -1 (metrics are >= 0, ranks never NaN)
    model.load_state(fit.best_state)
    if on_restore is not None:
        on_restore()
    final = _final_pass(model, data, config)
    prefix_last, valid_metrics, valid_ranks, test_ranks, test_ce, test_seconds = final
    result = {
        **(fields or {}),
        "seed": config.seed,
        "data": str(Path(config.data).resolve()),
        "rows": {split: len(d) for split, d in data.items()},
        "config": record,
        "parameters": sum(p.numel() for p in params),
        "best_epoch": fit.best_epoch,
        "select_metric": config.select_metric,
        "valid_at_best": valid_metrics,
        "prefix_items_last": prefix_last,
        "test": summarize_ranks(test_ranks, config.cutoffs),
        "test_ce": test_ce,
        **_cost(fit, test_seconds, rss_before, model_optimizer_mb(params, trainer.optimizer), config.threads),
        **(extra_results() if extra_results is not None else {}),
        "log": fit.log,
        "ranks_file": None,
    }
    write_result(result, Path(config.out), test_ranks, valid_ranks, data["test"].targets)
    trainer.checkpoint.unlink(missing_ok=True)
    return result


def _cost(fit: _Fit, test_seconds: float, rss_before: float, model_mb: float, threads: int) -> dict[str, object]:
    """The run's epochs, times, memory and software, in the order the result JSON lists them."""
    return {
        "epochs_run": len(fit.log),
        "resumed_after_epoch": fit.resumed_after,
        "seconds_per_epoch_train": float(np.mean(fit.train_seconds)),
        "cpu_seconds_per_epoch_train": float(np.mean(fit.train_cpu_seconds)),
        "seconds_per_epoch_valid": float(np.mean(fit.eval_seconds)),
        "seconds_test": test_seconds,
        "peak_rss_mb_before_training": rss_before,
        "peak_rss_mb": peak_rss_mb(),
        "model_optimizer_mb": model_mb,
        "threads": threads,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def write_result(
    result: dict, out: Path, test_ranks: np.ndarray, valid_ranks: np.ndarray, test_targets: np.ndarray
) -> dict:
    """Write the ranks to ``<out stem>.ranks.npz`` and then ``result`` (naming that file) to ``out``."""
    ranks_file = ranks_path(out)
    atomic_savez(
        ranks_file,
        test_ranks=test_ranks.astype(np.int64),
        valid_ranks=valid_ranks.astype(np.int64),
        test_targets=test_targets,
    )
    result["ranks_file"] = ranks_file.name
    atomic_write_text(out, json.dumps(result, indent=2) + "\n")
    return result
