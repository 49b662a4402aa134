"""Every exception class the package defines derives from one root, and keeps its built-in base."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import llm4sbr_adapter
from llm4sbr_adapter import Llm4sbrError

PACKAGE = Path(llm4sbr_adapter.__file__).parent


def _exception_classes() -> list[type]:
    """Each class defined at module level in the package's source that is an exception."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        names = [n.name for n in ast.parse(path.read_text(encoding="utf-8")).body if isinstance(n, ast.ClassDef)]
        if not names:
            continue
        module_name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        try:
            module = importlib.import_module(module_name)
        except ImportError:  # an optional dependency (e.g. recbole) is not installed
            continue
        found += [
            c for c in (getattr(module, n) for n in names) if isinstance(c, type) and issubclass(c, BaseException)
        ]
    return found


def test_every_package_exception_derives_from_the_root():
    classes = _exception_classes()
    assert len(classes) >= 12  # the scan found the package's exceptions (StoreError, InputFormatError, ...)
    strays = [f"{c.__module__}.{c.__qualname__}" for c in classes if not issubclass(c, Llm4sbrError)]
    assert strays == []


@pytest.mark.parametrize(
    "name, builtin",
    [
        ("llm4sbr_adapter.store.StoreError", ValueError),
        ("llm4sbr_adapter.offline.inputs.sessions.InputFormatError", ValueError),
        ("llm4sbr_adapter.offline.prompts.PromptError", ValueError),
        ("llm4sbr_adapter.offline.llm.base.LLMError", RuntimeError),
        ("llm4sbr_adapter.offline.llm.default_model.MissingChunkPackageError", ImportError),
        ("llm4sbr_adapter.hiphop.semantic_items.SemanticInitError", RuntimeError),
    ],
)
def test_exceptions_keep_their_builtin_base(name, builtin):
    module, _, cls = name.rpartition(".")
    exc = getattr(importlib.import_module(module), cls)
    assert issubclass(exc, builtin) and issubclass(exc, Llm4sbrError)
    with pytest.raises(builtin):  # existing `except ValueError` (etc.) code still catches it
        raise exc("message")
