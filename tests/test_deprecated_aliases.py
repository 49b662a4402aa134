"""The 0.1 import paths still work for one release and name the very same objects."""

import importlib
import sys

import pytest


@pytest.mark.parametrize(
    ("old", "new", "sub"),
    [
        ("llm4sbr_adapter.build", "llm4sbr_adapter.offline", "pipeline"),
        ("llm4sbr_adapter.build", "llm4sbr_adapter.offline", "llm.cache"),
        ("llm4sbr_adapter.models", "llm4sbr_adapter.hiphop", "neighbours"),
    ],
)
def test_old_path_is_the_new_module(old, new, sub):
    for name in [m for m in sys.modules if m == old or m.startswith(old + ".")]:
        del sys.modules[name]
    with pytest.warns(DeprecationWarning, match="renamed"):
        old_module = importlib.import_module(f"{old}.{sub}")
    assert old_module is importlib.import_module(f"{new}.{sub}")


def test_old_package_reexports_public_names():
    sys.modules.pop("llm4sbr_adapter.models", None)
    with pytest.warns(DeprecationWarning):
        old = importlib.import_module("llm4sbr_adapter.models")
    from llm4sbr_adapter.hiphop import HiphopHead

    assert old.HiphopHead is HiphopHead
