"""CPU time of the alignment + uniformity loss, forward and backward: the reference definition vs the fused function.

Reference: ``F.normalize`` then :func:`~llm4sbr_adapter.losses.align_uniform_terms` (autograd replays every op).
Fused: :func:`~llm4sbr_adapter.losses.normalized_align_uniform_terms` (one autograd function, hand-written
backward), the path :class:`~llm4sbr_adapter.enhancer.IntentEnhancer` and ``AlignUniformLoss`` take. Both run on
the same random ``[2, P, batch, d]`` inputs, alternating which goes first; the script prints the median CPU ms
(``time.process_time``, one torch thread) of each, their ratio, and the largest difference of values and gradients.

Example:
    python benchmarks/bench_align_uniform.py --batch-size 100 --perspectives 2 --dim 100 --steps 500
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from llm4sbr_adapter.losses import align_uniform_terms, normalized_align_uniform_terms


def reference(raw: torch.Tensor, t: float) -> dict[str, torch.Tensor]:
    return align_uniform_terms(F.normalize(raw, dim=-1), t, 1.0)


def fused(raw: torch.Tensor, t: float) -> dict[str, torch.Tensor]:
    return normalized_align_uniform_terms(raw, t, 1.0)


def timed(fn, raw: torch.Tensor, t: float) -> tuple[float, torch.Tensor, torch.Tensor]:
    leaf = raw.clone().requires_grad_()
    t0 = time.process_time()
    loss = fn(leaf, t)["loss"].sum()
    loss.backward()
    return time.process_time() - t0, loss.detach(), leaf.grad


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch-size", type=int, default=100, help="rows per block (default 100)")
    p.add_argument("--perspectives", type=int, default=2, help="blocks P (default 2)")
    p.add_argument("--dim", type=int, default=100, help="row width d (default 100)")
    p.add_argument("--steps", type=int, default=500, help="timed steps per variant (default 500)")
    p.add_argument("--t", type=float, default=2.0, help="uniformity temperature (default 2)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    times: dict[str, list[float]] = {"reference": [], "fused": []}
    worst_value = worst_grad = 0.0
    for k in range(args.steps + 20):
        raw = torch.randn(2, args.perspectives, args.batch_size, args.dim)
        order = (("reference", reference), ("fused", fused))
        got = {}
        for name, fn in order if k % 2 == 0 else order[::-1]:
            took, *got[name] = timed(fn, raw, args.t)
            if k >= 20:  # warm-up steps are not counted
                times[name].append(took)
        worst_value = max(worst_value, (got["reference"][0] - got["fused"][0]).abs().item())
        worst_grad = max(worst_grad, (got["reference"][1] - got["fused"][1]).abs().max().item())
    ref, new = (1e3 * statistics.median(times[v]) for v in ("reference", "fused"))
    shape = f"[2, {args.perspectives}, {args.batch_size}, {args.dim}]"
    print(f"align + uniform fwd+bwd on {shape}, median CPU ms over {args.steps} steps:")
    print(f"  reference {ref:.3f}, fused {new:.3f}, ratio {new / ref:.3f}x")
    print(f"  largest difference: value {worst_value:.2e}, gradient {worst_grad:.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
