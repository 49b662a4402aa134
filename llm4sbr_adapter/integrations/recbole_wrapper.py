"""LLM intents in any RecBole sequential model, by composition: :class:`IntentRecBole`.

``IntentRecBole(config, dataset)`` builds the backbone that ``config["model"]`` names (any
``SequentialRecommender``: SRGNN, NARM, STAMP, GRU4Rec, SASRec, ...) and adds an
:class:`~llm4sbr_adapter.IntentEnhancer`. The backbone's code is not copied or subclassed:

* its ``forward`` is wrapped on the instance, so the backbone's own ``calculate_loss``, ``predict``
  and ``full_sort_predict`` (which call ``self.forward``) score with the enhancer's session vector;
* the two behaviours are read where the backbone forms them (forward hooks, see
  :class:`~llm4sbr_adapter.integrations.recbole_config.RecBoleIntentSettings` ``behaviours``): SRGNN's
  ``[a; ht]`` into ``linear_transform``, NARM's ``[c_local; c_global]`` into ``b`` (NARM's "local" is an
  attention readout and its "global" the last GRU state, the opposite of the names used here), STAMP's
  two ``tanh`` outputs; any other model gives its ``[batch, d]`` output and the enhancer runs in
  single-input mode. The enhancer's session vector replaces forward's output (a ``Linear`` maps it to the
  output width when the behaviours are wider, as NARM's ``hidden_size`` is);
* ``calculate_loss`` returns ``(rec_loss, aux_loss)``: RecBole's ``Trainer`` sums a tuple and logs each part.

Rows are keyed by a per-interaction id column (``intent_id_field``, default ``event_id``): RecBole
augments a session into one row per prefix, and every column of a row holds its target interaction's
value, so the intent stored under a row's ``event_id`` must be built from the items before that event.

Without ``intent_store`` the wrapper is the **baseline arm**: the same enhancer and layers, fed zero
intents, with no auxiliary loss, so the two arms differ by the intents only.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from recbole.model.abstract_recommender import SequentialRecommender
from recbole.utils import FeatureType, get_model
from torch import nn

from llm4sbr_adapter import IntentEnhancer, IntentStore, StoreMismatchError
from llm4sbr_adapter.integrations.behaviour_hooks import BehaviourTap
from llm4sbr_adapter.integrations.recbole_config import DEFAULT_TEXT_DIM, enhancer_config_from, wrapper_settings

# Importing recbole.model.sequential_recommender runs `torch.autograd.set_detect_anomaly(True)` (in its
# SINE module) for the whole process: that slows every backward pass and turns harmless 0 * inf
# gradients elsewhere into errors. Nothing here needs it.
torch.autograd.set_detect_anomaly(False)

logger = logging.getLogger(__name__)

__all__ = ["IntentRecBole", "KNOWN_BEHAVIOURS", "load_recbole_checkpoint"]

# Where known backbones form (local, global) behaviours; every other model: "output" (single-input mode).
KNOWN_BEHAVIOURS = {
    "SRGNN": "linear_transform.input:global,local",  # linear_transform([a; ht])
    "NARM": "b.input:global,local",  # b([c_local (attention readout); c_global (last GRU state)])
    "STAMP": "tanh.outputs:global,local",  # hs = tanh(mlp_a(ma)), then ht = tanh(mlp_b(x_t))
}
SPLITS = ("train", "valid", "test")


def _integer_tokens(tokens: np.ndarray) -> np.ndarray | None:
    """``int64`` view of RecBole's raw tokens (index 0 is ``[PAD]`` -> -1), or ``None`` if one is not an integer."""
    out = np.full(len(tokens), -1, dtype=np.int64)
    try:
        out[1:] = [int(t) for t in tokens[1:]]
    except ValueError:
        return None
    return out


class IntentRecBole(nn.Module):
    """A RecBole sequential model whose session vector comes from an :class:`~llm4sbr_adapter.IntentEnhancer`.

    Args:
        config: a RecBole config (see :func:`~llm4sbr_adapter.integrations.recbole_config.recbole_config`);
            ``config["model"]`` names the backbone, the ``intent_*`` keys set the wrapper and the enhancer.
        dataset: the RecBole dataset the model is built for (``train_data.dataset``).
        backbone: an already built backbone (default: ``get_model(config["model"])(config, dataset)``).
        stores: ``{"train" | "valid" | "test": IntentStore}``, overriding the config's store paths.
    """

    def __init__(
        self,
        config: Any,
        dataset: Any,
        backbone: SequentialRecommender | None = None,
        stores: Mapping[str, IntentStore] | None = None,
    ) -> None:
        super().__init__()
        self.settings = wrapper_settings(config)
        self.backbone = backbone if backbone is not None else get_model(config["model"])(config, dataset)
        if not isinstance(self.backbone, SequentialRecommender):
            raise TypeError(f"IntentRecBole wraps a RecBole SequentialRecommender, got {type(self.backbone).__name__}")
        self.stores = self._open_stores(stores)
        self.intent_id_field = self._id_field(dataset) if self.stores else None
        spec = self.settings.behaviours or KNOWN_BEHAVIOURS.get(type(self.backbone).__name__, "output")
        self.tap = BehaviourTap(self.backbone, spec)
        self._original_forward = self.backbone.forward
        width, out_width = self._probe_widths()
        text_dim = self.settings.text_dim or (self.stores["train"].text_dim if self.stores else DEFAULT_TEXT_DIM)
        self.enhancer = IntentEnhancer(enhancer_config_from(config, hidden_size=width, text_dim=text_dim))
        self.to_output = nn.Linear(width, out_width) if width != out_width else None
        self.eval_split = "valid"
        self._ids: np.ndarray | None = None
        self._aux: torch.Tensor | None = None
        self.backbone.forward = self._enhanced_forward  # the backbone's own methods call self.forward

    @property
    def baseline(self) -> bool:
        """``True`` without stores: zero intents, no auxiliary loss."""
        return not self.stores

    # ---- stores and ids ----------------------------------------------------------------
    def _open_stores(self, given: Mapping[str, IntentStore] | None) -> dict[str, IntentStore]:
        s = self.settings
        if given:
            unknown = sorted(set(given) - set(SPLITS))
            if unknown or "train" not in given:
                raise ValueError(f"stores must map 'train' (and optionally 'valid', 'test'), got {sorted(given)}")
            stores = dict(given)
        elif s.store:
            stores = {"train": IntentStore.open(s.store)}
            if s.valid_store:
                stores["valid"] = IntentStore.open(s.valid_store)
            if s.test_store:
                stores["test"] = IntentStore.open(s.test_store)
        else:
            if s.valid_store or s.test_store:
                raise ValueError("intent_valid_store / intent_test_store given without intent_store")
            return {}
        stores.setdefault("valid", stores["train"])
        stores.setdefault("test", stores["valid"])
        return stores

    def _id_field(self, dataset: Any) -> str:
        field = self.settings.id_field
        if field not in dataset.field2type:
            raise ValueError(
                f"intent_id_field {field!r} is not a field of dataset {dataset.dataset_name!r} "
                f"(fields: {sorted(dataset.field2type)}); add an '{field}:token' column to the .inter file "
                f"and to load_col"
            )
        if dataset.field2type[field] != FeatureType.TOKEN:
            raise ValueError(f"intent_id_field {field!r} must be a token field, is {dataset.field2type[field]}")
        # RecBole remaps tokens to 1..n; field2id_token[k] is the raw token of internal id k.
        self._id_tokens = np.asarray(dataset.field2id_token[field]).astype(str)
        self._id_ints = _integer_tokens(self._id_tokens)
        return field

    def use_split(self, split: str) -> IntentRecBole:
        """Read ``split``'s store in eval mode (``"valid"`` during ``fit``, ``"test"`` before testing)."""
        if split not in ("valid", "test"):
            raise ValueError(f"use_split takes 'valid' or 'test', got {split!r}")
        self.eval_split = split
        return self

    def active_store(self) -> IntentStore:
        """The store of the current mode (train in training mode, else the eval split's), bound to the enhancer."""
        store = self.stores["train" if self.training else self.eval_split]
        if self.enhancer.store is not store:
            self.enhancer.bind_store(store)
        return store

    def raw_ids(self, internal: Any, store: IntentStore) -> np.ndarray:
        """RecBole's internal ids of ``intent_id_field`` -> the raw tokens, as the store's id kind."""
        if isinstance(internal, torch.Tensor):
            internal = internal.detach().cpu().numpy()
        internal = np.asarray(internal)
        if store.metadata.id_kind == "int":
            if self._id_ints is None:
                bad = next(t for t in self._id_tokens[1:] if not t.lstrip("-").isdigit())
                raise ValueError(
                    f"store {store.path} has integer session ids but field {self.intent_id_field!r} "
                    f"has the non-integer token {bad!r}"
                )
            return self._id_ints[internal]
        return self._id_tokens[internal]

    def check_split(
        self, data: Any, split: str, store: IntentStore | None = None, sessions_sha256: str | None = None
    ) -> dict[str, int]:
        """Check before training that ``split``'s store (or ``store``) holds the intents of every row of ``data``.

        RecBole cuts its splits in memory from one ``.inter`` file, so a split has no file identity the
        store could record (the enhancer's ``sessions_sha256`` check); every row's raw ``intent_id_field``
        token is looked up instead. Raises :class:`~llm4sbr_adapter.StoreMismatchError` naming the split,
        the store, the counts and the id ranges when rows are missing and ``intent_missing`` is ``"raise"``,
        or when none is found; otherwise a warning reports the missing share. Returns ``{"rows", "found"}``.

        Ids that repeat across splits (``row_id`` of RecBole's pre-split files, each a row number of its
        split's pickle) would be found in a wrong split's store as well: pass ``sessions_sha256``, the hash
        of the split's pickle, and the store must record it (else ``StoreMismatchError`` names both files).
        """
        if self.baseline:
            raise ValueError("check_split needs stores; this is the baseline arm (no intent_store)")
        store = store if store is not None else self.stores[split]
        if sessions_sha256 is not None:
            self.enhancer.bind_store(store)
            self.enhancer.check_sessions_file(sessions_sha256, f"the {split} split")
        dataset = getattr(data, "dataset", data)
        ids = self.raw_ids(dataset.inter_feat[self.intent_id_field], store)
        _, found = store.rows(ids)
        n, k = len(ids), int(found.sum())
        if k < n:
            absent = ids[~found]
            ranges = ""
            if store.metadata.id_kind == "int":
                held = store.session_ids
                ranges = f"; the {split} rows have ids {ids.min()}..{ids.max()}, the store " + (
                    f"{held.min()}..{held.max()}" if len(held) else "none"
                )
            problem = (
                f"{store.path}: {n - k} of the {n} {split} rows are not in this store ({store.num_sessions} "
                f"ids; {self.intent_id_field} {absent[:5].tolist()}{' ...' if len(absent) > 5 else ''}{ranges})"
            )
            missing = self.enhancer.config.missing
            if k == 0 or missing == "raise":
                raise StoreMismatchError(
                    f"{problem}: is it the {split} split's store, built from this dataset? (intent_missing={missing!r})"
                )
            logger.warning("%s; intent_missing=%r substitutes them", problem, missing)
        return {"rows": n, "found": k}

    # ---- model -------------------------------------------------------------------------
    def _probe_widths(self) -> tuple[int, int]:
        """Run the backbone once on a one-item row: (behaviour width, output width)."""
        was_training = self.backbone.training
        self.backbone.eval()
        seq = torch.zeros(1, self.backbone.max_seq_length, dtype=torch.long)
        seq[0, 0] = 1
        device = next(self.backbone.parameters()).device
        try:
            with torch.no_grad():
                h_local, _, out = self.behaviours(seq.to(device), torch.ones(1, dtype=torch.long, device=device))
        finally:
            self.backbone.train(was_training)
        return h_local.shape[-1], out.shape[-1]

    def behaviours(
        self, item_seq: torch.Tensor, item_seq_len: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """``(h_local, h_global, output)`` of the unmodified backbone (``h_global`` ``None``: single-input mode)."""
        with self.tap:
            out = self._original_forward(item_seq, item_seq_len)
        h_local, h_global = self.tap.behaviours(out)
        return h_local, h_global, out

    def _enhanced_forward(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
        """The backbone's ``forward`` with the enhancer's session vector as its output."""
        h_local, h_global, _ = self.behaviours(item_seq, item_seq_len)
        if self.baseline:
            width = self.enhancer.config.text_dim
            zeros = {p: h_local.new_zeros(h_local.shape[0], width) for p in self.enhancer.config.perspectives}
            projected = self.enhancer.project_intents(zeros)
            session = self.enhancer.fuse_session(h_local, h_local if h_global is None else h_global, projected)
            self._aux = h_local.new_zeros(())
        else:
            if self._ids is None:
                raise RuntimeError(
                    "the intent-enhanced backbone needs each row's id: call it through IntentRecBole's "
                    "calculate_loss / predict / full_sort_predict"
                )
            self.active_store()
            out = self.enhancer(h_local, h_global, session_ids=self._ids)
            session, self._aux = out.session, out.aux_loss
        return self.to_output(session) if self.to_output is not None else session

    def _run(self, method: str, interaction: Any) -> torch.Tensor:
        if not self.baseline:
            self._ids = self.raw_ids(interaction[self.intent_id_field], self.active_store())
        try:
            return getattr(self.backbone, method)(interaction)
        finally:
            self._ids = None

    def calculate_loss(self, interaction: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """``(rec_loss, aux_loss)``: the backbone's own loss on the enhanced session vector, and the intents' loss."""
        rec = self._run("calculate_loss", interaction)
        assert self._aux is not None  # set by the forward call inside
        return rec, self._aux

    def predict(self, interaction: Any) -> torch.Tensor:
        """Scores ``[batch]`` of the candidate items in ``interaction`` (the backbone's ``predict``)."""
        return self._run("predict", interaction)

    def full_sort_predict(self, interaction: Any) -> torch.Tensor:
        """Scores ``[batch, n_items]`` of every item (the backbone's ``full_sort_predict``)."""
        return self._run("full_sort_predict", interaction)

    def other_parameter(self) -> Any:  # noqa: D102 - RecBole Trainer hook
        return self.backbone.other_parameter()

    def load_other_parameter(self, para: Any) -> None:  # noqa: D102 - RecBole Trainer hook
        self.backbone.load_other_parameter(para)


def load_recbole_checkpoint(model: nn.Module, path: str | os.PathLike) -> None:
    """Load the ``state_dict`` of a checkpoint that RecBole's ``Trainer`` wrote in this run.

    The file pickles RecBole's config too, so ``torch.load`` needs ``weights_only=False``: only
    use it on files you wrote yourself. (``Trainer.evaluate(load_best_model=True)`` fails on torch >= 2.6.)
    """
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    model.load_state_dict(checkpoint["state_dict"])
