"""``faiss``, imported with its loader's INFO lines kept out of the user's log.

faiss's loader tries its CPU builds in turn (AVX512-SPR, AVX512, AVX2, generic) and logs each attempt
at INFO, failures included, as ``Could not load library with AVX512_SPR support due to:
ModuleNotFoundError("No module named 'faiss.swigfaiss_avx512_spr'")``: lines that read like errors
although the next build loads fine. Its logger is set to WARNING before the import; real failures (no
build loads) still raise ``ImportError``. Import ``faiss`` from here.
"""

from __future__ import annotations

import logging

logging.getLogger("faiss.loader").setLevel(logging.WARNING)

import faiss  # noqa: E402 - after the logger is quietened

__all__ = ["faiss"]
