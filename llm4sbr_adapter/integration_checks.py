"""Sanity checks for a model patched with an :class:`~llm4sbr_adapter.IntentEnhancer` (docs/integration.md).

Each check raises ``AssertionError`` with a one-line message naming what is wrong, so it can sit in a
test or at the start of a training script:

* :func:`check_ids_match_targets`: the ids a batch carries are the rows its targets came from (a loader
  that shuffles without carrying ids, or passes positions as ids, fails it);
* :func:`check_in_optimizer`: every trainable parameter of the enhancer is in the optimizer (an optimizer
  built in the backbone's ``__init__`` before the enhancer was added misses them all);
* :func:`check_aux_reaches_projections`: the auxiliary loss alone sends gradient into every projection
  (a detached intent, an ``aux_loss`` left out of the loss or a zero ``loss_weight`` fails it).

The fourth check of the list, that a wrong split's store is refused, is the enhancer's own: pass
``sessions_sha256=`` with the ids (:meth:`~llm4sbr_adapter.IntentEnhancer.forward`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

__all__ = ["check_aux_reaches_projections", "check_ids_match_targets", "check_in_optimizer"]


def check_ids_match_targets(
    ids: Sequence[int] | np.ndarray | torch.Tensor,
    batch_targets: Sequence[int] | np.ndarray | torch.Tensor,
    split_targets: Sequence[int] | np.ndarray | torch.Tensor,
) -> None:
    """Each batch row's target equals the target of the split row its id names (``split_targets[id]``)."""
    ids_ = np.asarray(torch.as_tensor(ids).cpu())
    got = np.asarray(torch.as_tensor(batch_targets).cpu())
    want = np.asarray(torch.as_tensor(split_targets).cpu())[ids_]
    wrong = np.flatnonzero(got != want)
    if len(wrong):
        k = int(wrong[0])
        raise AssertionError(
            f"{len(wrong)} of {len(ids_)} batch rows carry an id whose target differs (row {k}: id {int(ids_[k])} "
            f"has target {int(want[k])}, the batch says {int(got[k])}): the ids are not the rows of the batch"
        )


def check_in_optimizer(optimizer: torch.optim.Optimizer, module: nn.Module) -> None:
    """Every trainable parameter of ``module`` (e.g. ``model.enhancer``) is in one of ``optimizer``'s groups."""
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    missing = [name for name, p in module.named_parameters() if p.requires_grad and id(p) not in held]
    if missing:
        raise AssertionError(
            f"{len(missing)} trainable parameters of {type(module).__name__} are not in the optimizer "
            f"({', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}): build the optimizer after the "
            f"enhancer is added, from model.parameters()"
        )


def check_aux_reaches_projections(enhancer: nn.Module, aux_loss: torch.Tensor) -> None:
    """``aux_loss`` (from this step's ``out.aux_loss``, graph kept) gives every projection weight a gradient."""
    project = getattr(enhancer, "project", None)
    if project is None:
        raise AssertionError(f"{type(enhancer).__name__} has no 'project' layers: is it an IntentEnhancer?")
    if not aux_loss.requires_grad:
        raise AssertionError("aux_loss has no graph (computed under no_grad, detached, or loss_weight is 0)")
    weights = {name: layer.weight for name, layer in project.items()}
    grads = torch.autograd.grad(aux_loss, list(weights.values()), retain_graph=True, allow_unused=True)
    dead = [name for (name, _), g in zip(weights.items(), grads, strict=True) if g is None or not bool(g.abs().sum())]
    if dead:
        raise AssertionError(f"the auxiliary loss sends no gradient into the projections of {dead}")
