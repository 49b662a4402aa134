"""The one safetensors writer: every ``.safetensors`` file of the package goes through the library, atomically.

Intent stores (numpy arrays), the enhancer's weights (torch tensors) and the catalogue-embedding cache
(one numpy matrix) are all written by :func:`save_safetensors`: the ``safetensors`` library lays out the
header (string-to-string ``__metadata__``, padding to a multiple of 8 bytes) and the tensors, and
:func:`~llm4sbr_adapter.atomic_files.atomic_path` gives it a temporary path that it fsyncs, gives the
usual permissions and renames over the target.

(safetensors >= 0.8 itself writes a ``.tmpXXXXXX`` file in the folder of the path it is given and renames
it over that path, without fsync and with mode 0600: the outer temporary path keeps the rename over the
target last, durable and with the permissions of a plain ``open``. A write killed inside the library may
leave its ``.tmpXXXXXX`` file, which :func:`~llm4sbr_adapter.atomic_files.remove_stale_temp_files` does
not know as ours; and the lock :func:`atomic_path` holds stays on the file the library replaced, so for
the moment between the two renames the new one is protected from other writers' cleanup by its age alone.)
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
import torch
from safetensors.numpy import save_file as save_numpy
from safetensors.torch import save_file as save_torch

from .atomic_files import atomic_path

__all__ = ["save_safetensors"]


def save_safetensors(
    path: str | os.PathLike,
    tensors: Mapping[str, np.ndarray] | Mapping[str, torch.Tensor],
    metadata: Mapping[str, str] | None = None,
) -> None:
    """Write ``tensors`` (all numpy arrays, or all torch tensors) and ``metadata`` to ``path``, atomically.

    Arrays are made C-contiguous first (the library copies ``nbytes`` from the data pointer); torch
    tensors are detached and moved to the CPU.

    Raises:
        TypeError: ``tensors`` mixes numpy arrays and torch tensors, or holds something else.
        ValueError: ``metadata`` does not map strings to strings (the format allows nothing else).
    """
    meta = dict(metadata or {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise ValueError(f"safetensors metadata must map strings to strings, got {sorted(map(str, meta))}")
    arrays = {name: v for name, v in tensors.items() if isinstance(v, np.ndarray)}
    weights = {name: v for name, v in tensors.items() if isinstance(v, torch.Tensor)}
    if len(arrays) == len(tensors):
        with atomic_path(path) as tmp:
            save_numpy({name: np.ascontiguousarray(v) for name, v in arrays.items()}, str(tmp), metadata=meta)
    elif len(weights) == len(tensors):
        with atomic_path(path) as tmp:
            save_torch({name: v.detach().cpu().contiguous() for name, v in weights.items()}, str(tmp), metadata=meta)
    else:
        kinds = sorted({type(v).__name__ for v in tensors.values()})
        raise TypeError(f"tensors must be all numpy arrays or all torch tensors, got {kinds}")
