"""Dynamic int8 weights for a causal LM on a CPU, with PyTorch's own kernels (no compile step, no extra package).

:func:`quantize_linear_int8` swaps every ``nn.Linear`` for ``torch.ao.nn.quantized.dynamic.Linear``:
weights stored as int8 with one float scale per output channel, activations quantised on the fly per
batch. Decoding a 0.5B model reads a quarter of the float32 weight bytes per token and the matmuls run
on int8 kernels (fbgemm / onednn): on a CPU about 1.8x faster than float32 on the demo. The catch: one
activation scale per batch, so an answer depends on which prompts share its batch (the same batch
gives the same answers; one prompt alone, another batch size, a resumed or sharded build may not),
and with a 0.5B model most greedy answers change (8 of 44 demo answers identical to float32, 18 of 44
snap to the same top item). Hence opt-in (``default:int8``), and ``model_id`` says ``int8``.
``torch.ao.quantization`` is deprecated in favour of torchao, but still ships with torch; this module
is the one place that calls it.
"""

from __future__ import annotations

import warnings

import torch
from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

__all__ = ["quantize_linear_int8"]


def quantize_linear_int8(model):
    """Replace ``model``'s ``nn.Linear`` layers in place by dynamic int8 ones (CPU only); returns ``model``."""
    if any(p.device.type != "cpu" for p in model.parameters()):
        raise ValueError("int8 dynamic quantisation runs on a CPU only; use quantize=None on other devices")
    with warnings.catch_warnings():  # torch's deprecation notices of torch.ao, once per process, say nothing new
        warnings.simplefilter("ignore", (DeprecationWarning, UserWarning))
        return quantize_dynamic(model, {torch.nn.Linear: per_channel_dynamic_qconfig}, inplace=True)
