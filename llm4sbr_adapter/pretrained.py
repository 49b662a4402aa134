"""A module's weights and config side by side in one folder: ``<config>.json`` + ``<weights>.safetensors``.

Used by :meth:`IntentEnhancer.save_pretrained <llm4sbr_adapter.enhancer.IntentEnhancer.save_pretrained>` and
:meth:`HiphopHead.save_pretrained <llm4sbr_adapter.hiphop.head.HiphopHead.save_pretrained>` (and their
``from_pretrained``). The weights go through :func:`~llm4sbr_adapter.safetensors_io.save_safetensors`
with the config's format name and version in the file's metadata; each file is written atomically.
Reading checks that the weights fit the model the config builds and names every missing, unexpected or
mis-shaped tensor, and every tensor holding NaN or infinity. Order-sensitive settings (the enhancer's
perspectives, whose order lays out the fusion layer's input) are saved in the weights' metadata as
``order.<setting>``; a config whose order differs from the saved one is refused, since its weights would
load and silently compute something else.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn

from . import strict_json
from .config import ConfigBase
from .safetensors_io import save_safetensors

__all__ = ["load_pretrained_weights", "order_problems", "save_pretrained", "state_problems"]


def save_pretrained(
    module: nn.Module,
    config: ConfigBase,
    directory: str | os.PathLike,
    *,
    config_name: str,
    weights_name: str,
    order: Mapping[str, Sequence[str]] | None = None,
) -> Path:
    """Write ``module``'s ``state_dict`` to ``directory/weights_name`` and ``config`` to ``directory/config_name``;
    ``order`` (setting -> names in the order the weights use them) goes into the weights' metadata."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    meta = {"format": config.FORMAT, "format_version": str(config.FORMAT_VERSION)}
    meta.update({f"order.{name}": json.dumps(list(names)) for name, names in (order or {}).items()})
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
    order: Mapping[str, Sequence[str]] | None = None,
) -> nn.Module:
    """Load ``directory/weights_name`` into ``model`` (built from ``directory/config_name``) and move it.

    ``FileNotFoundError`` names a missing weights file (``what``: e.g. ``"enhancer"``); ``ValueError`` names
    both files, the config's ``settings`` that shape the model and every tensor that does not fit, a
    tensor with NaN or infinity, and an ``order`` (setting -> names) other than the one the weights saved.
    """
    directory = Path(directory)
    weights_path = directory / weights_name
    if not weights_path.is_file():
        raise FileNotFoundError(f"{what} weights not found: {weights_path}")
    state = load_file(str(weights_path), device=str(map_location))
    with safe_open(str(weights_path), framework="pt") as handle:
        saved = handle.metadata() or {}
    problems = state_problems(model.state_dict(), state) + order_problems(saved, order or {}, config_name)
    problems += [f"{k} holds NaN or infinity" for k, v in sorted(state.items()) if not bool(torch.isfinite(v).all())]
    if problems:
        shown = f" ({settings})" if settings else ""
        raise ValueError(f"{weights_path} does not match {directory / config_name}{shown}: " + "; ".join(problems))
    model.load_state_dict(state)
    return model.to(map_location)


def order_problems(saved: Mapping[str, str], order: Mapping[str, Sequence[str]], config_name: str) -> list[str]:
    """Each order-sensitive setting whose order in the config differs from the one saved with the weights."""
    problems = []
    for name, names in order.items():
        text = saved.get(f"order.{name}")
        if text is None:
            continue  # weights saved before the order was recorded
        want = strict_json.loads(text)
        if list(names) != want:
            problems.append(
                f"{config_name} lists {name} {list(names)} but the weights were trained with {want} "
                f"(the order matters: restore it)"
            )
    return problems
