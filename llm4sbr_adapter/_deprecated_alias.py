"""Old import paths kept for one release after the 0.2 renames (``build`` -> ``offline``,
``models`` -> ``hiphop``).

An alias is a module (not a folder: a folder named ``build/`` is what the common ``.gitignore``
templates drop) that re-exports the new package and registers every submodule under the old dotted
name, so ``import llm4sbr_adapter.build.pipeline`` yields the very same module object as
``llm4sbr_adapter.offline.pipeline`` (no second copy of any class).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import warnings
from types import ModuleType


def install_alias(old: str, new: str) -> ModuleType:
    """Point ``old`` and each ``old.<sub>`` at ``new`` and ``new.<sub>``; warn once per import."""
    warnings.warn(
        f"{old} was renamed {new}; the old name goes away in the next release", DeprecationWarning, stacklevel=3
    )
    package = importlib.import_module(new)
    for info in pkgutil.walk_packages(package.__path__, prefix=new + "."):
        module = importlib.import_module(info.name)
        sys.modules[old + info.name[len(new) :]] = module
    sys.modules[old] = package
    return package
