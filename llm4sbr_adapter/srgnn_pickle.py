"""The one reader of SR-GNN's pickled splits: ``train.txt`` / ``test.txt`` hold ``pickle.dump((sequences, targets))``.

A pickle can run code when it is read: open only files from a trusted source (the builder's
``fmt="auto"`` refuses pickle-headed files not named like one). Both users read through
:func:`read_srgnn_pickle`: the builder's session reader
(:func:`~llm4sbr_adapter.offline.inputs.sessions.read_sessions`, which turns rows into sessions with ids)
and the experiment harness (:func:`~llm4sbr_adapter.experiments.data.splits.load_split`, which packs
them into flat arrays); each checks the item ids its own way and raises its own error class. It sits at
the top of the package, beside the other leaves both stages share, so that training loads no module of
stage one.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["read_srgnn_pickle"]

_ROW_TYPES = (list, tuple, np.ndarray)


def read_srgnn_pickle(path: str | os.PathLike, error: type[Exception]) -> tuple[Sequence[Any], Sequence[Any] | None]:
    """``(sequences, targets)`` of a pickled SR-GNN split, as stored (targets may be ``None``).

    Args:
        path: the pickle (trusted input only).
        error: the exception class raised for a file that is no such pickle (the caller's format error).

    Raises:
        error: the file does not unpickle, is not a ``(sequences, targets)`` pair of row lists, or has
            another number of targets than sequences; the message names the file.
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            data: Any = pickle.load(handle)
    except Exception as err:  # noqa: BLE001 - any unpickling failure is a format error
        raise error(f"{path}: not a readable pickle ({type(err).__name__}: {err})") from None
    if not (
        isinstance(data, (tuple, list))
        and len(data) >= 2
        and isinstance(data[0], _ROW_TYPES)
        and (len(data[0]) == 0 or isinstance(data[0][0], _ROW_TYPES))
    ):
        raise error(
            f"{path}: expected a pickled tuple (sequences, targets) as SR-GNN's train.txt/test.txt, "
            f"got {type(data).__name__}"
        )
    sequences: Any = data[0]  # a list of rows (or an array): what the pickle holds, unconverted
    targets: Any = data[1]
    if targets is not None and len(targets) != len(sequences):
        raise error(f"{path}: {len(sequences)} sequences but {len(targets)} targets")
    return sequences, targets
