"""Time of one training step with the intent enhancer vs the backbone alone, side by side, and where it goes.

Two copies of a backbone (same seed) train on the same batches of a prepared split, one alone and one
with :class:`~llm4sbr_adapter.enhancer.IntentEnhancer` on the split's intent store; their steps
alternate (which goes first flips every batch), so load on a shared machine hits both alike. The script
prints the median CPU milliseconds per step (``time.process_time``: with one torch thread this is the
step's own work, which other jobs on a shared machine do not inflate as they inflate wall time), their
ratio, and the enhancer's parts timed on their own over the same batches: the store lookup, the
projections and fusion, and the alignment + uniformity loss (forward and backward each).

With ``--reference-loss`` a third copy runs in the same rotation: the enhancer with its alignment +
uniformity loss computed by the reference definition (``F.normalize`` + ``align_uniform_terms``, autograd
through every op) instead of the fused function, so that what the fused loss buys is measured side by side.

With ``--compiled`` another copy runs in the same rotation: the enhancer whose tensor work (projections,
fusion, loss) is one ``torch.compile``'d function (inductor; the store lookup stays eager), to see what
fusing its small element-wise ops buys on this CPU. Compilation happens during the warm-up steps.

A quicker companion to ``benchmarks/cost_table3.py`` (whole epochs in separate processes): use it to see
what an enhancer change buys; report Table 3 from cost_table3.

Example:
    python benchmarks/bench_enhancer_step.py --data /work/runs/paper/beauty/seed0 \\
        --store /work/runs/paper/beauty/seed0/stores/text_mean_train.safetensors --models srgnn stamp --steps 300
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from llm4sbr_adapter.enhancer import EnhancerOutput, IntentEnhancer, IntentEnhancerConfig
from llm4sbr_adapter.experiments.data.catalogue import count_items
from llm4sbr_adapter.experiments.data.splits import load_split
from llm4sbr_adapter.experiments.models.batching import iterate_batches
from llm4sbr_adapter.experiments.models.recommender import Session, build_backbone
from llm4sbr_adapter.losses import align_uniform_terms
from llm4sbr_adapter.store import IntentStore


class ReferenceLossEnhancer(IntentEnhancer):
    """The enhancer with the alignment + uniformity loss of the reference definition (for comparison only)."""

    def aux_loss(self, projected, behaviours, found):
        cfg = self.config
        pairs = torch.stack(
            [projected[p] for p in cfg.perspectives] + [behaviours[cfg.pairing[p]] for p in cfg.perspectives]
        )
        pairs = pairs.view(2, len(cfg.perspectives), *pairs.shape[1:])
        if found is not None and not bool(found.all()):
            pairs = pairs[:, :, found]
        pairs = F.normalize(pairs, dim=-1, eps=self.align_uniform.eps)
        terms = align_uniform_terms(pairs, cfg.uniformity_t, cfg.uniform_weight)
        parts = {k: v.detach() for k, v in terms.items()}
        return terms["loss"].sum(), {p: {k: v[i] for k, v in parts.items()} for i, p in enumerate(cfg.perspectives)}


class CompiledEnhancer(IntentEnhancer):
    """The enhancer with projections, fusion and loss in one ``torch.compile``'d function (for comparison only).

    Full batches only (the last, shorter batch runs eagerly, so that shapes stay static).
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.compiled_work = torch.compile(self._tensor_work, dynamic=False)  # compiles on its first call
        self.compiled_batch: int | None = None  # the batch size it was compiled for

    def _tensor_work(self, h_local, h_global, intents, found):
        projected = self.project_intents(intents)
        session = self.fuse_session(h_local, h_global, projected)
        aux, _ = self.aux_loss(projected, {"local": h_local, "global": h_global}, found)
        return session, aux, projected

    def forward(self, h_local, h_global, intents=None, session_ids=None, **kw):
        if self.compiled_batch is None:
            self.compiled_batch = h_local.shape[0]
        intents, found = self.lookup(session_ids, h_local, **kw)
        work = self.compiled_work if h_local.shape[0] == self.compiled_batch else self._tensor_work
        session, aux, projected = work(h_local, h_global, intents, found)
        return EnhancerOutput(session=session, aux_loss=self.config.loss_weight * aux, projected=projected, found=found)


def make_session(
    name: str, num_items: int, store: IntentStore | None, seed: int, enhancer_class: type = IntentEnhancer
) -> tuple[Session, torch.optim.Adam]:
    torch.manual_seed(seed)
    backbone = build_backbone(name, num_items, 100)
    enhancer = None
    if store is not None:
        cfg = IntentEnhancerConfig(hidden_size=100, text_dim=store.text_dim, perspectives=tuple(store.perspectives))
        enhancer = enhancer_class(cfg, store=store)
    sess = Session(backbone, enhancer, {"train": store} if store is not None else {})
    sess.train(True)
    sess.use_split("train")
    return sess, torch.optim.Adam(sess.parameters(), lr=1e-3, fused=True)


def timed_step(sess: Session, opt: torch.optim.Adam, batch) -> float:
    t0 = time.process_time()
    ce, aux, _ = sess.loss_and_scores(batch, training=True)
    opt.zero_grad(set_to_none=True)
    (ce + aux).backward()
    opt.step()
    return time.process_time() - t0


def part_times(enh: IntentEnhancer, batches: list, sha256: str) -> dict[str, float]:
    """Median ms of the enhancer's parts over ``batches`` (fresh random behaviour embeddings per batch)."""
    out: dict[str, list[float]] = {"lookup": [], "projection + fusion (fwd+bwd)": [], "align + uniform (fwd+bwd)": []}
    for batch in batches:
        h = [torch.randn(len(batch.targets), enh.config.hidden_size, requires_grad=True) for _ in range(2)]
        t0 = time.process_time()
        intents, found = enh.lookup(batch.row_ids, h[0], sessions_sha256=sha256)
        t1 = time.process_time()
        projected = enh.project_intents(intents)
        enh.fuse_session(h[0], h[1], projected).sum().backward()
        t2 = time.process_time()
        projected = {p: z.detach().requires_grad_() for p, z in projected.items()}
        enh.aux_loss(projected, {"local": h[0], "global": h[1]}, found)[0].backward()
        t3 = time.process_time()
        out["lookup"].append(t1 - t0)
        out["projection + fusion (fwd+bwd)"].append(t2 - t1)
        out["align + uniform (fwd+bwd)"].append(t3 - t2)
    return {k: 1e3 * statistics.median(v) for k, v in out.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="prepared data folder (train.txt, items.tsv)")
    p.add_argument("--store", required=True, help="intent store of train.txt's rows")
    p.add_argument("--models", nargs="+", default=["srgnn", "stamp"], help="backbones (default srgnn stamp)")
    p.add_argument("--steps", type=int, default=300, help="timed steps per variant (default 300)")
    p.add_argument("--batch-size", type=int, default=100, help="rows per batch (default 100)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument(
        "--reference-loss",
        action="store_true",
        help="also time the enhancer with the reference (unfused) alignment + uniformity loss",
    )
    p.add_argument(
        "--compiled", action="store_true", help="also time the enhancer with its tensor work torch.compile'd"
    )
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    train = load_split(Path(args.data) / "train.txt")
    num_items = count_items(Path(args.data), [train])
    store = IntentStore.open(args.store, sessions_sha256=train.sha256)
    print(f"store {args.store}: {store.num_sessions} rows, dtype {store.metadata.dtype}; {args.threads} thread(s)")
    for name in args.models:
        variants = {
            "alone": make_session(name, num_items, None, 0),
            "enhancer": make_session(name, num_items, store, 0),
        }
        if args.reference_loss:
            variants["enhancer, reference loss"] = make_session(name, num_items, store, 0, ReferenceLossEnhancer)
        if args.compiled:
            variants["enhancer, torch.compile"] = make_session(name, num_items, store, 0, CompiledEnhancer)
        times: dict[str, list[float]] = {v: [] for v in variants}
        batches = []
        graph = variants["alone"][0].needs_graph
        labels = list(variants)
        for k, batch in enumerate(iterate_batches(train, args.batch_size, shuffle=True, seed=1, graph=graph)):
            if k == args.steps + 5:
                break
            shift = k % len(labels)  # which variant goes first rotates every batch
            for label in labels[shift:] + labels[:shift]:
                took = timed_step(*variants[label], batch)
                if k >= 5:  # warm-up steps are not counted
                    times[label].append(took)
            batches.append(batch)
        ms = {v: 1e3 * statistics.median(t) for v, t in times.items()}
        a = ms["alone"]
        print(f"\n{name}: median CPU ms/step over {len(times['alone'])} steps: alone {a:.2f}")
        for label in labels[1:]:
            print(f"  + {label:26s} {ms[label]:6.2f}  ratio {ms[label] / a:.3f}x (extra {ms[label] - a:.2f} ms/step)")
        enh = variants["enhancer"]
        for part, part_ms in part_times(enh[0].enhancer, batches[5:], train.sha256).items():
            print(f"  {part:32s} {part_ms:6.2f} ms  ({part_ms / a:5.1%} of a step alone)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
