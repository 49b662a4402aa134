"""Deprecated: renamed :mod:`llm4sbr_adapter.offline` in 0.2; this alias goes in the next release."""

from ._deprecated_alias import install_alias

install_alias(__name__, "llm4sbr_adapter.offline")
