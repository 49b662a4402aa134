"""Read a GGUF file's metadata once while transformers converts it.

Loading a GGUF with transformers (``AutoTokenizer`` then ``AutoModelForCausalLM``, each with
``gguf_file=``) reads the file's metadata three times: for the tokenizer, for the config and again for
the weights. Each read builds a ``gguf.GGUFReader``, which parses every metadata field in Python, and
then converts every field again; for the default model's 151,936 tokens and 151,387 merges the two
extra reads cost about 28 s of a first run on two cores (``benchmarks/bench_gguf_conversion.py``: 52 s
per conversion instead of 81 s). transformers offers no way to pass a parsed file along, so
:func:`read_gguf_once` swaps two names for the duration of a load:

* ``gguf.GGUFReader``: one reader per file (the reader only reads, through a read-only memory map);
* ``transformers.modeling_gguf_pytorch_utils.load_gguf_checkpoint`` called without tensors (tokenizer
  and config): computed once per file, a deep copy handed to each caller, since callers edit the dict.

Both names are looked up at call time by transformers (``from gguf import GGUFReader`` and
``from ..modeling_gguf_pytorch_utils import load_gguf_checkpoint`` run inside its functions), so the swap
is seen; the originals are restored on exit, even after an error. If either module lacks the name
(another transformers or gguf version), that swap is skipped and loading simply parses as before.
The swap is process-wide while it lasts: do not load GGUF files from other threads meanwhile.
"""

from __future__ import annotations

import contextlib
import copy
import os
from collections.abc import Iterator
from typing import Any

__all__ = ["read_gguf_once"]


def _one_reader_per_file(reader_class: Any) -> Any:
    readers: dict[tuple, Any] = {}

    def reader(path: Any, *args: Any, **kwargs: Any) -> Any:
        key = (os.path.realpath(os.fspath(path)), args, tuple(sorted(kwargs.items())))
        if key not in readers:
            readers[key] = reader_class(path, *args, **kwargs)
        return readers[key]

    return reader


def _metadata_once_per_file(load: Any) -> Any:
    parsed: dict[str, Any] = {}

    def load_checkpoint(path: Any, return_tensors: bool = False, *args: Any, **kwargs: Any) -> Any:
        if return_tensors or args or kwargs:  # the weights: read once anyway, and their options vary
            return load(path, return_tensors, *args, **kwargs)
        key = os.path.realpath(os.fspath(path))
        if key not in parsed:
            parsed[key] = load(path, False)
        return copy.deepcopy(parsed[key])

    return load_checkpoint


@contextlib.contextmanager
def read_gguf_once() -> Iterator[None]:
    """Within the block, transformers parses each GGUF file's metadata once (see the module docstring)."""
    swaps = []
    with contextlib.suppress(ImportError):  # each library is optional: patch the ones installed
        import gguf

        if hasattr(gguf, "GGUFReader"):
            swaps.append((gguf, "GGUFReader", _one_reader_per_file(gguf.GGUFReader)))
    with contextlib.suppress(ImportError):  # an older transformers has no GGUF support
        from transformers import modeling_gguf_pytorch_utils as gguf_utils

        if hasattr(gguf_utils, "load_gguf_checkpoint"):
            swaps.append((gguf_utils, "load_gguf_checkpoint", _metadata_once_per_file(gguf_utils.load_gguf_checkpoint)))
    originals = [(module, name, getattr(module, name)) for module, name, _ in swaps]
    try:
        for module, name, replacement in swaps:
            setattr(module, name, replacement)
        yield
    finally:
        for module, name, original in originals:
            setattr(module, name, original)
