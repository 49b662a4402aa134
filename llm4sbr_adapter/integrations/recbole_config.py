"""RecBole configs for intent-enhanced models, and the ``intent_*`` keys they may hold.

Every setting of :class:`~llm4sbr_adapter.integrations.recbole_wrapper.IntentRecBole` is a RecBole config
key: the wrapper's own (:class:`RecBoleIntentSettings`: stores, id field, where the behaviours are) and the
enhancer's (each :class:`~llm4sbr_adapter.IntentEnhancerConfig` field ``name`` as ``intent_<name>``), so
one YAML file or ``config_dict`` holds the whole run. An ``intent_*`` key that names neither is refused
(a misspelt key would otherwise be ignored silently).

RecBole 1.2.1 on numpy 2 needs :class:`RecBoleConfig` (RecBole's ``Config`` sets numpy aliases from
names that numpy 2 removed). :func:`recbole_config` builds one without reading ``sys.argv``: RecBole's
``Config`` parses the host script's command line and warns "command line args [...] will not be used in
RecBole" about every flag it does not know.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from recbole.config import Config

from llm4sbr_adapter.config import ConfigBase, ConfigError, setting
from llm4sbr_adapter.enhancer import IntentEnhancerConfig

__all__ = ["RecBoleConfig", "RecBoleIntentSettings", "recbole_config", "enhancer_config_from", "PREFIX"]

PREFIX = "intent_"
DEFAULT_TEXT_DIM = 384  # all-MiniLM-L6-v2, the builder's default encoder

# numpy aliases that RecBole 1.2.1 reads (np.float in its metrics, np.long in some layers); numpy 1.24
# and 2.0 removed them, and RecBole's own Config sets them from names (np.float_, ...) that numpy 2
# removed as well.
_NUMPY_ALIASES = {
    "bool": np.bool_,
    "int": np.int_,
    "float": np.float64,
    "complex": np.complex128,
    "object": np.object_,
    "str": np.str_,
    "long": np.int_,
    "unicode": np.str_,
}


class RecBoleConfig(Config):
    """RecBole's ``Config`` with a numpy-2-safe ``compatibility_settings``.

    It sets the same old numpy aliases as RecBole does (module attributes of numpy, as RecBole
    itself does on numpy 1.x), from names that still exist in numpy 2.
    """

    def compatibility_settings(self) -> None:  # noqa: D102 - RecBole hook
        for name, value in _NUMPY_ALIASES.items():
            if name not in np.__dict__:
                setattr(np, name, value)


@dataclass
class RecBoleIntentSettings(ConfigBase):
    """The wrapper's own settings; in a RecBole config each field ``name`` is the key ``intent_<name>``."""

    FORMAT = "llm4sbr-recbole-intents"

    store: str = setting("", "intent store read in training mode; empty: the baseline arm (zero intents, no aux loss)")
    valid_store: str = setting("", "store read in eval mode during fit (default: store)")
    test_store: str = setting("", "store read in eval mode after use_split('test') (default: valid_store)")
    id_field: str = setting(
        "event_id", "token column with one id per interaction; a row's intent is stored under its target's id"
    )
    behaviours: str = setting(
        "",
        "where the backbone forms its behaviours: 'output' (single-input mode on forward's [batch, d] output), "
        "'<module>.input:<a>,<b>' (that submodule's input is the concatenation [a; b]) or "
        "'<module>.outputs:<a>,<b>' (its outputs over two calls), a and b being 'local' and 'global'; "
        "empty: the known layout of SRGNN, NARM or STAMP, else 'output'",
    )
    text_dim: int = setting(0, "width of the intent vectors when no store gives it (0: the store's, or 384)", minimum=0)


_ENHANCER_KEYS = {f.name for f in dataclasses.fields(IntentEnhancerConfig) if f.name not in ("hidden_size", "text_dim")}
_OWN_KEYS = {f.name for f in dataclasses.fields(RecBoleIntentSettings)}


def intent_keys(config: Config | Mapping[str, Any]) -> dict[str, Any]:
    """``{name: value}`` of the config's ``intent_*`` keys that are set; an unknown one raises ``ConfigError``."""
    values = config.final_config_dict if isinstance(config, Config) else config
    out = {}
    for key, value in values.items():
        if not key.startswith(PREFIX) or value is None:
            continue
        name = key[len(PREFIX) :]
        if name not in _ENHANCER_KEYS | _OWN_KEYS:
            known = ", ".join(PREFIX + k for k in sorted(_ENHANCER_KEYS | _OWN_KEYS))
            raise ConfigError(f"RecBole config key {key!r} is not an intent setting (known: {known})", field=key)
        out[name] = value
    return out


def wrapper_settings(config: Config | Mapping[str, Any]) -> RecBoleIntentSettings:
    """The wrapper's settings read from a RecBole config."""
    given = intent_keys(config)
    return RecBoleIntentSettings(**{k: v for k, v in given.items() if k in _OWN_KEYS})


def enhancer_config_from(config: Config | Mapping[str, Any], hidden_size: int, text_dim: int) -> IntentEnhancerConfig:
    """An :class:`~llm4sbr_adapter.IntentEnhancerConfig` from the ``intent_<field>`` keys (absent: defaults)."""
    given = {k: v for k, v in intent_keys(config).items() if k in _ENHANCER_KEYS}
    if "perspectives" in given:
        given["perspectives"] = tuple(given["perspectives"])
    return IntentEnhancerConfig(hidden_size=hidden_size, text_dim=text_dim, **given)


def recbole_config(
    model: str,
    dataset: str,
    data_path: str | os.PathLike,
    config_dict: Mapping[str, Any] | None = None,
    config_files: list[str] | None = None,
) -> RecBoleConfig:
    """RecBole's config for backbone ``model`` (its own YAML defaults, then ``config_files``, then ``config_dict``).

    The process's command line is hidden from RecBole while it is built (see the module docstring), and
    the ``intent_*`` keys are checked.
    """
    values = {"data_path": str(data_path), **dict(config_dict or {})}
    argv = sys.argv
    sys.argv = argv[:1]
    try:
        config = RecBoleConfig(model=model, dataset=dataset, config_file_list=config_files, config_dict=values)
    finally:
        sys.argv = argv
    wrapper_settings(config)  # raises on a misspelt intent_* key
    return config
