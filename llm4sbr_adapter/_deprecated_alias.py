"""Old import paths, kept for one release after a rename: the one mechanism that serves them.

:data:`ALIASES` maps each old dotted name to its new home and the release that drops it. A finder
(:class:`AliasFinder`, installed first on ``sys.meta_path`` when the package is imported) answers an
import of an old name, or of any submodule under it, with the very module object of the new name (no
second copy of any class) and a ``DeprecationWarning`` that names the new path and the release. No file
sits at an old path: a folder named ``build/`` is what the common ``.gitignore`` templates drop, and a
stub module would be a second copy of the alias rule.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from collections.abc import Sequence
from types import ModuleType

__all__ = ["ALIASES", "AliasFinder", "install"]

# old dotted name -> (new dotted name, the release that removes the old name)
ALIASES: dict[str, tuple[str, str]] = {
    "llm4sbr_adapter.build": ("llm4sbr_adapter.offline", "0.3.0"),
    "llm4sbr_adapter.models": ("llm4sbr_adapter.hiphop", "0.3.0"),
    "llm4sbr_adapter.offline.sessions": ("llm4sbr_adapter.offline.inputs.sessions", "0.3.0"),
    "llm4sbr_adapter.offline.srgnn_pickle": ("llm4sbr_adapter.srgnn_pickle", "0.3.0"),
}


def resolve(name: str) -> tuple[str, str, str] | None:
    """``(old root, new name, removal release)`` when ``name`` is an old name or lies under one."""
    for old, (new, removed_in) in ALIASES.items():
        if name == old or name.startswith(old + "."):
            return old, new + name[len(old) :], removed_in
    return None


class _AliasLoader(importlib.abc.Loader):
    """Loads an old name as the module of its new name (imported on first use)."""

    def __init__(self, new: str) -> None:
        self.new = new
        self.spec: importlib.machinery.ModuleSpec | None = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = importlib.import_module(self.new)
        self.spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        module.__spec__ = self.spec  # the import system set the old name's spec on it: give it its own back


class AliasFinder(importlib.abc.MetaPathFinder):
    """Finds the old names of :data:`ALIASES` (and everything under them)."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        found = resolve(fullname)
        if found is None:
            return None
        old, new, removed_in = found
        warnings.warn(
            f"{fullname} was renamed {new}; the old name ({old}) goes away in release {removed_in}",
            DeprecationWarning,
            stacklevel=2,
        )
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(new))


def install() -> None:
    """Put the finder first on ``sys.meta_path`` (once)."""
    if not any(isinstance(finder, AliasFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, AliasFinder())
