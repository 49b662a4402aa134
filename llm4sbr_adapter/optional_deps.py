"""Optional dependencies: a missing one is a one-line error that names the extra which installs it.

The reproduction harness needs packages the library itself does not (scipy for the simple baselines,
matplotlib for the plots); they come with the ``examples`` extra. Import them like this, so that a user
without the extra reads what to install instead of a traceback::

    try:
        import scipy.sparse as sp
    except ImportError as err:
        raise missing_extra("scipy", "the simple baselines") from err

A plotting script calls :func:`pyplot` (the import is inside the function, because the library itself
must import without matplotlib).
"""

from __future__ import annotations

import importlib
from typing import Any

from .errors import Llm4sbrError

EXTRAS = {"scipy": "examples", "matplotlib": "examples"}


class MissingExtraError(Llm4sbrError, ImportError):
    """An optional package is not installed; the message says which extra installs it."""


def install_hint(package: str) -> str:
    """``pip install -e ".[<extra>]"`` for ``package`` (its own name when no extra lists it)."""
    extra = EXTRAS.get(package)
    return f'pip install -e ".[{extra}]"' if extra else f"pip install {package}"


def missing_extra(package: str, purpose: str) -> MissingExtraError:
    """The error to raise when ``package`` cannot be imported for ``purpose`` (one line, with the install hint)."""
    return MissingExtraError(f"{package} is not installed (needed for {purpose}): {install_hint(package)}")


def pyplot(purpose: str) -> Any:
    """``matplotlib.pyplot`` on the file-only Agg backend, or :class:`MissingExtraError` naming the extra."""
    try:
        import matplotlib
    except ImportError as err:
        raise missing_extra("matplotlib", purpose) from err
    matplotlib.use("Agg")
    return importlib.import_module("matplotlib.pyplot")
