"""Session vectors from item-level outputs, whatever the padding side and the order of the clicks.

Backbones store a session as a padded ``[batch, L]`` row of item ids with a ``[batch, L]`` mask (true at
real clicks). The common ``h[rows, length - 1]`` picks the last click only when clicks run oldest first
and padding is on the right. A codebase that stores sessions reversed (latest click at position 0) or
pads on the left makes that rule pick the first click or a padding slot, silently.
:func:`last_click_index` finds the latest real click from the mask and the order, for either padding:

* ``latest="end"``: clicks in time order (oldest first): the latest is the last true position of the mask
  (the row's end with right padding, ``L - 1`` with left padding);
* ``latest="start"``: clicks reversed (newest first): the latest is the first true position.

:func:`last_click` gathers that position's ``[batch, d]`` vector (``h_local``); :func:`masked_mean`
averages a ``[batch, L, d]`` output over the real clicks (a plain ``h_global`` for item-level outputs).
"""

from __future__ import annotations

from typing import Literal

import torch

__all__ = ["last_click", "last_click_index", "masked_mean"]

Latest = Literal["end", "start"]


def _check_mask(mask: torch.Tensor) -> torch.Tensor:
    if mask.dim() != 2:
        raise ValueError(f"mask must be [batch, length], got shape {tuple(mask.shape)}")
    mask = mask.bool()
    empty = (~mask.any(dim=1)).nonzero().flatten()
    if len(empty):
        raise ValueError(f"rows {empty[:5].tolist()} of the mask have no real click")
    return mask


def last_click_index(mask: torch.Tensor, latest: Latest = "end") -> torch.Tensor:
    """``int64 [batch]`` position of each row's latest real click (module docstring)."""
    if latest not in ("end", "start"):
        raise ValueError(f"latest must be 'end' (clicks oldest first) or 'start' (newest first), got {latest!r}")
    mask = _check_mask(mask)
    positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    if latest == "end":
        return torch.where(mask, positions, -1).max(dim=1).values
    return torch.where(mask, positions, mask.shape[1]).min(dim=1).values


def last_click(states: torch.Tensor, mask: torch.Tensor, latest: Latest = "end") -> torch.Tensor:
    """``[batch, d]``: each row's state ``states[b, i]`` at its latest real click."""
    if states.dim() != 3 or states.shape[:2] != mask.shape:
        raise ValueError(
            f"states must be [batch, length, d] matching mask {tuple(mask.shape)}, got {tuple(states.shape)}"
        )
    index = last_click_index(mask, latest)
    return states[torch.arange(states.shape[0], device=states.device), index]


def masked_mean(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``[batch, d]``: the mean of ``states`` (``[batch, length, d]``) over each row's real clicks."""
    mask = _check_mask(mask)
    if states.dim() != 3 or states.shape[:2] != mask.shape:
        raise ValueError(
            f"states must be [batch, length, d] matching mask {tuple(mask.shape)}, got {tuple(states.shape)}"
        )
    weights = mask.to(states.dtype).unsqueeze(-1)
    return (states * weights).sum(dim=1) / weights.sum(dim=1)
