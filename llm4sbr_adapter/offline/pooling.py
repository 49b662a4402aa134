"""How a sentence-transformers model folder turns token states into one sentence vector.

A folder saved by sentence-transformers lists its modules in ``modules.json`` (transformer, then
``...Pooling`` with its own folder, usually ``1_Pooling/``, then optionally ``...Normalize``). The
pooling folder's ``config.json`` names the mode, either as ``"pooling_mode": "cls"`` (sentence-transformers
>= 5) or as the older booleans ``"pooling_mode_cls_token": true`` etc. :func:`read_pooling` reads both;
:func:`pool` applies ``mean`` (over real tokens), ``cls`` (the first real token) or ``max`` (over real
tokens). A plain Hugging Face folder without ``modules.json`` gets mean pooling without a Normalize step.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from .. import strict_json

__all__ = ["POOLING_MODES", "Pooling", "pool", "read_pooling"]

PoolingMode = Literal["mean", "cls", "max"]
POOLING_MODES: tuple[str, ...] = ("mean", "cls", "max")

# sentence-transformers' older boolean keys, by the mode each switches on
_LEGACY_KEYS = {
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}


@dataclass(frozen=True)
class Pooling:
    """A folder's sentence pooling: ``mode`` and whether a Normalize module follows it."""

    mode: PoolingMode = "mean"
    normalize: bool = False


def _read_json(path: Path) -> Any:
    try:
        return strict_json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: not found (named by the model folder's modules.json)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None


def _pooling_mode(config: Any, path: Path) -> PoolingMode:
    if not isinstance(config, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(config).__name__}")
    modes = config.get("pooling_mode")
    if modes is None:
        modes = [mode for key, mode in _LEGACY_KEYS.items() if config.get(key)] or ["mean"]
    modes = [modes] if isinstance(modes, str) else list(modes)
    if len(modes) != 1 or modes[0] not in POOLING_MODES:
        raise ValueError(
            f"{path}: pooling mode {modes if len(modes) != 1 else modes[0]!r} is not supported; "
            f"this encoder pools with exactly one of {list(POOLING_MODES)}"
        )
    return modes[0]


def read_pooling(folder: str | Path) -> Pooling:
    """The pooling ``folder``'s ``modules.json`` and pooling ``config.json`` declare.

    Raises:
        ValueError: a file is not valid JSON, or names a mode other than mean/cls/max (or several).
        FileNotFoundError: ``modules.json`` names a pooling folder without ``config.json``.
    """
    folder = Path(folder)
    modules_file = folder / "modules.json"
    if not modules_file.is_file():
        return Pooling()
    modules = _read_json(modules_file)
    if not isinstance(modules, list) or not all(isinstance(m, dict) for m in modules):
        raise ValueError(f"{modules_file}: expected a JSON list of module objects")
    types = [str(m.get("type", "")) for m in modules]
    normalize = any(t.endswith(".Normalize") for t in types)
    pooling = [m for m, t in zip(modules, types, strict=True) if t.endswith(".Pooling")]
    if not pooling:
        return Pooling(normalize=normalize)
    config_file = folder / str(pooling[0].get("path", "1_Pooling")) / "config.json"
    return Pooling(_pooling_mode(_read_json(config_file), config_file), normalize)


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, mode: PoolingMode) -> torch.Tensor:
    """``[b, t, D]`` token states and ``[b, t]`` mask -> ``[b, D]``; a row with no real token is zero."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # [b, t, 1]
    if mode == "mean":
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
    has_token = mask.sum(dim=1) > 0  # [b, 1]
    if mode == "cls":
        first = attention_mask.to(torch.int).argmax(dim=1)  # first real token, whichever side pads
        pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), first]
    elif mode == "max":
        pooled = hidden.masked_fill(mask == 0, float("-inf")).max(dim=1).values
    else:
        raise ValueError(f"pooling mode must be one of {POOLING_MODES}, got {mode!r}")
    return torch.where(has_token, pooled, torch.zeros_like(pooled))
