"""The intent store: one safetensors file shared by the offline builder and the training side.

A store maps session ids to one intent vector per perspective (``[num_sessions, text_dim]``),
plus optional explanations (the top-f catalogue items each intent was snapped to, their
softmax weights, and the LLM's answers). The exact layout is written down in
``docs/store-format.md``; this package is the reference implementation, one job a module:

* :mod:`.format`: tensor names, dtypes, :class:`StoreMetadata` and its rules, string columns;
* :mod:`.container`: the safetensors container, written through
  :func:`~llm4sbr_adapter.safetensors_io.save_safetensors` (atomically) and read by memory map;
* :mod:`.validate`: the checks on open (the layout the header promises, then the values);
* :mod:`.reader`: :class:`IntentStore`, which opens one memory-mapped, validates it against what the
  caller expects, and looks up batches of session ids without a Python loop per id;
* :mod:`.write`: :func:`write_store`;
* :mod:`.merge`: :func:`merge_stores` joins shard stores into one.

Text columns (string session ids, item ids, answers) are stored as two tensors, the UTF-8
bytes of all strings concatenated (``uint8``) and ``int64`` offsets of length ``n + 1``, because
safetensors holds tensors and a small string-to-string metadata map only.
"""

from ..hashing import sha256_file
from .format import (
    ANSWER_PREFIX,
    BUILD_DTYPE,
    FORMAT_NAME,
    FORMAT_VERSION,
    INTENT_PREFIX,
    ITEM_IDS,
    METADATA_KEY,
    OFFSETS_SUFFIX,
    RAW_ANSWER_PREFIX,
    SESSION_IDS,
    TOP_ITEMS_PREFIX,
    TOP_WEIGHTS_PREFIX,
    UTF8_SUFFIX,
    MissingPolicy,
    StoreError,
    StoreMetadata,
    StoreMismatchError,
    decode_strings,
    encode_strings,
)
from .merge import merge_stores
from .reader import IntentStore
from .write import write_store

__all__ = [
    "ANSWER_PREFIX",
    "BUILD_DTYPE",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "INTENT_PREFIX",
    "ITEM_IDS",
    "METADATA_KEY",
    "OFFSETS_SUFFIX",
    "RAW_ANSWER_PREFIX",
    "SESSION_IDS",
    "TOP_ITEMS_PREFIX",
    "TOP_WEIGHTS_PREFIX",
    "UTF8_SUFFIX",
    "IntentStore",
    "MissingPolicy",
    "StoreError",
    "StoreMetadata",
    "StoreMismatchError",
    "decode_strings",
    "encode_strings",
    "merge_stores",
    "sha256_file",
    "write_store",
]
