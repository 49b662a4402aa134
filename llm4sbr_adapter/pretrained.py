"""A module's weights and config side by side in one folder: ``<config>.json`` + ``<weights>.safetensors``.

Used by :meth:`IntentEnhancer.save_pretrained <llm4sbr_adapter.enhancer.IntentEnhancer.save_pretrained>` and
:meth:`HiphopHead.save_pretrained <llm4sbr_adapter.hiphop.head.HiphopHead.save_pretrained>` (and their
``from_pretrained``). The weights go through :func:`~llm4sbr_adapter.safetensors_io.save_safetensors`
with the config's format name and version in the file's metadata; each file is written atomically.
Reading checks that the weights fit the model the config builds and names every missing, unexpected or
mis-shaped tensor.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from .config import ConfigBase
from .safetensors_io import save_safetensors

__all__ = ["save_pretrained", "load_pretrained_weights", "state_problems"]


def save_pretrained(
    module: nn.Module, config: ConfigBase, directory: str | os.PathLike, *, config_name: str, weights_name: str
) -> Path:
    """Write ``module``'s ``state_dict`` to ``directory/weights_name`` and ``config`` to ``directory/config_name``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    meta = {"format": config.FORMAT, "format_version": str(config.FORMAT_VERSION)}
    save_safetensors(directory / weights_name, state, meta)
    config.save(directory / config_name)
    return directory


def state_problems(expected: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor]) -> list[str]:
    """What keeps ``state`` from loading into a model whose ``state_dict`` is ``expected`` (empty: nothing)."""
    problems = []
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing:
        problems.append(f"missing tensors {missing}")
    if unexpected:
        problems.append(f"unexpected tensors {unexpected}")
    for k in sorted(set(expected) & set(state)):
        if tuple(expected[k].shape) != tuple(state[k].shape):
            problems.append(f"{k}: weights have shape {tuple(state[k].shape)}, config needs {tuple(expected[k].shape)}")
    return problems


def load_pretrained_weights(
    model: nn.Module,
    directory: str | os.PathLike,
    *,
    config_name: str,
    weights_name: str,
    what: str,
    settings: str = "",
    map_location: str | torch.device = "cpu",
) -> nn.Module:
    """Load ``directory/weights_name`` into ``model`` (built from ``directory/config_name``) and move it.

    ``FileNotFoundError`` names a missing weights file (``what``: e.g. ``"enhancer"``); ``ValueError`` names
    both files, the config's ``settings`` that shape the model and every tensor that does not fit.
    """
    directory = Path(directory)
    weights_path = directory / weights_name
    if not weights_path.is_file():
        raise FileNotFoundError(f"{what} weights not found: {weights_path}")
    state = load_file(str(weights_path), device=str(map_location))
    problems = state_problems(model.state_dict(), state)
    if problems:
        shown = f" ({settings})" if settings else ""
        raise ValueError(f"{weights_path} does not match {directory / config_name}{shown}: " + "; ".join(problems))
    model.load_state_dict(state)
    return model.to(map_location)
