"""One rule for progress bars: drawn only when asked (``progress``) **and** stderr is a terminal.

A build's bars (answers, encoding, the catalogue, a GGUF conversion, transformers' weight loading) all
follow :func:`bars_enabled`. Inside ``with progress_policy(requested):`` the answer is fixed for the block
(a context variable, so code deep inside, such as a lazily loading LLM backend, need not be passed the
flag); a log file or a pipe (``2> log.txt``, CI) then gets no carriage-return bar lines at all.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import partial

__all__ = ["bars_enabled", "progress_policy", "transformers_bars"]

_ALLOWED: ContextVar[bool] = ContextVar("llm4sbr_progress_bars", default=True)


def _stderr_is_terminal() -> bool:
    isatty = getattr(sys.stderr, "isatty", None)
    try:
        return bool(isatty()) if isatty is not None else False
    except ValueError:  # a closed stream
        return False


def bars_enabled(requested: bool = True) -> bool:
    """Whether to draw a bar: ``requested``, not switched off by an enclosing :func:`progress_policy`, on a terminal."""
    return bool(requested) and _ALLOWED.get() and _stderr_is_terminal()


@contextmanager
def progress_policy(requested: bool) -> Iterator[bool]:
    """Fix :func:`bars_enabled` for the block (the value is yielded); nested code asks :func:`bars_enabled`."""
    show = bars_enabled(requested)
    token = _ALLOWED.set(show)
    try:
        yield show
    finally:
        _ALLOWED.reset(token)


@contextmanager
def transformers_bars() -> Iterator[None]:
    """Model loading under the rule: transformers' own bars and its GGUF conversion bar (a plain ``tqdm``)
    are switched off for the block unless :func:`bars_enabled`; both are restored after."""
    if bars_enabled():
        yield
        return
    # transformers is heavy and only model loading needs it: imported here, not by everything that draws a bar
    import transformers.modeling_gguf_pytorch_utils as gguf_utils
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    had = gguf_utils.__dict__.get("tqdm")
    if had is not None:
        gguf_utils.tqdm = partial(had, disable=True)
    try:
        yield
    finally:
        if had is not None:
            gguf_utils.tqdm = had
        if was_enabled:
            hf_logging.enable_progress_bar()
