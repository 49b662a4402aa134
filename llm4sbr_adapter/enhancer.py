"""Fuse LLM-inferred intent vectors into a backbone's session representation (LLM4SBR stage two).

A session-based backbone (SR-GNN and the like) forms two behaviour embeddings per session:
``h_local`` (``[batch, hidden]``, usually the last item's state) and ``h_global``
(``[batch, hidden]``, an attention readout over the session). :class:`IntentEnhancer`

1. projects each perspective's text vector (``[batch, text_dim]``, from an
   :class:`~llm4sbr_adapter.store.IntentStore` or passed in) into the backbone's space with one
   ``nn.Linear(text_dim, hidden)`` per perspective;
2. fuses the projections with the two behaviour embeddings into one session vector
   (``fusion="concat"`` or ``"gate"``, see :class:`IntentEnhancerConfig`);
3. returns an auxiliary alignment + uniformity loss (:class:`~llm4sbr_adapter.losses.AlignUniformLoss`)
   between each projected intent and the behaviour embedding it is paired with, already
   multiplied by ``loss_weight`` so that ``total = rec_loss + out.aux_loss``.

Weights and config are saved side by side (``enhancer_config.json`` + ``enhancer.safetensors``)
with :meth:`IntentEnhancer.save_pretrained` and read back with :meth:`IntentEnhancer.from_pretrained`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .config import ConfigBase, setting
from .intent_source import IntentSource, StoreIdentity
from .losses import AlignUniformLoss, normalized_align_uniform_terms
from .pretrained import load_pretrained_weights, save_pretrained
from .store import IntentStore

logger = logging.getLogger(__name__)

__all__ = ["IntentEnhancerConfig", "IntentEnhancer", "EnhancerOutput", "CONFIG_NAME", "WEIGHTS_NAME"]

CONFIG_NAME = "enhancer_config.json"
WEIGHTS_NAME = "enhancer.safetensors"
CONFIG_FORMAT = "llm4sbr-intent-enhancer"
CONFIG_FORMAT_VERSION = 1

Behaviour = Literal["local", "global"]
Fusion = Literal["concat", "gate"]
MissingPolicy = Literal["raise", "zeros", "learned"]
BEHAVIOURS: tuple[str, ...] = typing.get_args(Behaviour)
# Paper defaults: the long-term intent describes the whole session (global readout), the
# short-term intent the latest interest (last item). Other perspectives default to "global".
DEFAULT_PAIRING = {"long": "global", "short": "local"}


# --------------------------------------------------------------------------- config
@dataclass
class IntentEnhancerConfig(ConfigBase):
    """Settings of an :class:`IntentEnhancer`; validated on construction, saved beside the weights.

    ``fusion="concat"``: ``Linear([h_local; h_global; z_p1; ...; z_pP]) -> hidden`` (the paper's eq. 9).
    ``fusion="gate"``: per behaviour ``b`` with paired perspectives, ``s_b = sum of their projections``,
    ``b' = sigmoid(W_b [b; s_b] + c_b) * b``; then ``Linear([h_global'; h_local']) -> hidden``. The gate
    reads the *concatenation* ``[b; s_b]`` (not ``b + s_b``) so that it can weigh behaviour and intent
    separately; a behaviour with no paired perspective passes through unchanged.

    ``intent_norm``: sentence encoders emit unit vectors, but localised intents (softmax-weighted sums of
    item embeddings) have norms that depend on how peaked the weights are; normalising puts every
    session's intent on the same scale. Zero vectors stay zero.

    Each field's help text is in its metadata (``dataclasses.fields(IntentEnhancerConfig)``).
    """

    FORMAT: ClassVar[str] = CONFIG_FORMAT
    FORMAT_VERSION: ClassVar[int] = CONFIG_FORMAT_VERSION

    hidden_size: int = setting(
        help="width d of the backbone's session embeddings (h_local/h_global are [batch, d])", minimum=1
    )
    text_dim: int = setting(help="width of the stored intent vectors (384 for all-MiniLM-L6-v2)", minimum=1, cli=False)
    perspectives: tuple[str, ...] = setting(
        ("long", "short"),
        "intent perspectives used, in a fixed order (at least one; non-empty names without '.')",
    )
    pairing: dict[str, str] = setting(
        help="{perspective: 'local' | 'global'}: the behaviour embedding each projected intent is aligned with "
        "(and, for fusion='gate', the one it gates); an empty or partial mapping (or None) is completed with "
        "long -> global, short -> local and 'global' for any other name; the stored value is always complete",
        default_factory=dict,
        cli=False,
    )
    fusion: Fusion = setting("concat", "how intents and behaviours are fused: concat (the paper's) or gate")
    dropout: float = setting(
        0.0,
        "dropout on the projected intents before fusion (training mode only)",
        minimum=0.0,
        maximum=1.0,
        exclusive_maximum=True,
        flag="--enhancer-dropout",
    )
    loss_weight: float = setting(
        0.1,
        "weight of the summed alignment + uniformity loss (the paper's tau)",
        minimum=0.0,
        flag="--aux-weight",
    )
    uniformity_t: float = setting(2.0, "temperature t of the uniformity term", minimum=0.0, exclusive_minimum=True)
    uniform_weight: float = setting(
        1.0, "weight of uniformity relative to alignment inside each perspective's loss", minimum=0.0
    )
    missing: MissingPolicy = setting(
        "raise",
        "session ids absent from the store: raise (KeyError naming them), zeros (zero text vector) or "
        "learned (one trainable vector per perspective); rows without an intent are left out of the "
        "auxiliary loss in both substitute modes",
        flag="--missing-intents",
    )
    intent_norm: bool = setting(True, "L2-normalise text vectors before projection")
    text_encoder: str = setting(
        "",
        "encoder that made the store's vectors; when set, a store from another encoder is refused; when empty, "
        "save_pretrained records the first source's",
        cli=False,
    )
    catalogue_sha256: str = setting(
        "",
        "sha256 of the item catalogue the store's intents were localised to; when set, a store built from "
        "another catalogue is refused; when empty, save_pretrained records the first source's (configs saved "
        "before this field existed load with '')",
        cli=False,
    )

    def validate(self) -> None:
        """Perspective names and the pairing (completed with the defaults)."""
        persp = self.perspectives
        if not persp:
            self.fail("perspectives", "must name at least one perspective")
        for p in persp:
            if not p or "." in p:
                self.fail("perspectives", f"has a bad name {p!r} (non-empty string without '.')")
        dups = sorted({p for p in persp if persp.count(p) > 1})
        if dups:
            self.fail("perspectives", f"has duplicates: {dups}")
        if self.pairing is not None and not isinstance(self.pairing, Mapping):
            self.fail("pairing", f"must be a mapping {{perspective: 'local' | 'global'}}, got {self.pairing!r}")
        given = dict(self.pairing or {})
        unknown = sorted(set(given) - set(persp))
        if unknown:
            self.fail("pairing", f"names perspectives {unknown} that are not in perspectives {list(persp)}")
        for p, b in given.items():
            if b not in BEHAVIOURS:
                self.fail("pairing", f"[{p!r}] must be 'local' or 'global', got {b!r}")
        self.pairing = {p: given.get(p, DEFAULT_PAIRING.get(p, "global")) for p in persp}


# --------------------------------------------------------------------------- output
@dataclass
class EnhancerOutput:
    """What :meth:`IntentEnhancer.forward` returns.

    Attributes:
        session: ``[batch, hidden]`` fused session representation (use it where the backbone's was used).
        aux_loss: scalar, ``loss_weight * sum over perspectives of AlignUniformLoss``; add it to the
            recommendation loss. It may be negative: the uniformity term is the log of a mean of
            ``exp(-t * d^2)``, which is ``<= 0`` (see :class:`~llm4sbr_adapter.losses.AlignUniformLoss`).
        projected: ``{perspective: [batch, hidden]}`` projected intents (before dropout).
        losses: ``{perspective: {"align", "uniform", "loss"}}`` unweighted, detached scalars for logging (a
            read-only mapping whose inner dicts are made on access, so that a step that does not log pays nothing).
        found: ``bool [batch]`` rows whose intents came from the store (``None`` when intents were passed in).
    """

    session: torch.Tensor
    aux_loss: torch.Tensor
    projected: dict[str, torch.Tensor]
    losses: Mapping[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    found: torch.Tensor | None = None


TERM_NAMES = ("align", "uniform", "loss")


class _PerspectiveTerms(Mapping):
    """``{perspective: {"align", "uniform", "loss"}}`` read on access from one detached ``[3, P]`` tensor."""

    def __init__(self, terms: torch.Tensor, perspectives: Sequence[str]) -> None:
        self._terms = terms
        self._index = {p: i for i, p in enumerate(perspectives)}

    def __getitem__(self, perspective: str) -> dict[str, torch.Tensor]:
        i = self._index[perspective]
        return {k: self._terms[j, i] for j, k in enumerate(TERM_NAMES)}

    def __iter__(self):
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)


# --------------------------------------------------------------------------- module
class IntentEnhancer(nn.Module):
    """Projects intent vectors, fuses them with ``h_local``/``h_global`` and computes the aux loss.

    Args:
        config: an :class:`IntentEnhancerConfig`.
        source: optional :class:`~llm4sbr_adapter.intent_source.IntentSource` that ``forward(session_ids=...)``
            reads (see :meth:`use_source`); without one, pass ``intents=`` tensors to :meth:`forward`.
        store: shorthand for ``source=enhancer.source_for(store)`` (the missing-id policy of the config).

    The module holds no data and never changes its config: the source is a reference to a read-only file.

    Submodules: ``project`` (``ModuleDict`` perspective -> ``Linear(text_dim, hidden)``),
    ``fuse`` (the final ``Linear``), ``gates`` (``ModuleDict`` behaviour -> ``Linear(2*hidden, hidden)``,
    gate fusion only) and ``missing_intent`` (``ParameterDict`` perspective -> ``[text_dim]``,
    ``missing="learned"`` only).

    The auxiliary loss is computed in training and eval mode alike (it is cheap and useful as a
    validation metric); under ``torch.no_grad()`` it is simply a tensor without a graph. It is the
    **sum** over perspectives (not the mean), so adding a perspective adds its own term at the
    same weight; scale ``loss_weight`` down if you use many perspectives.
    """

    def __init__(
        self, config: IntentEnhancerConfig, source: IntentSource | None = None, *, store: IntentStore | None = None
    ) -> None:
        super().__init__()
        if not isinstance(config, IntentEnhancerConfig):
            raise TypeError(f"config must be an IntentEnhancerConfig, got {type(config).__name__}")
        self.config = config
        h, t = config.hidden_size, config.text_dim
        self.project = nn.ModuleDict({p: nn.Linear(t, h) for p in config.perspectives})
        self.dropout = nn.Dropout(config.dropout)
        if config.fusion == "concat":
            self.fuse = nn.Linear((2 + len(config.perspectives)) * h, h)
        else:
            used = [b for b in BEHAVIOURS if b in config.pairing.values()]
            self.gates = nn.ModuleDict({b: nn.Linear(2 * h, h) for b in used})
            self.fuse = nn.Linear(2 * h, h)
        if config.missing == "learned":
            self.missing_intent = nn.ParameterDict(
                {p: nn.Parameter(torch.randn(t) / t**0.5) for p in config.perspectives}
            )
        self.align_uniform = AlignUniformLoss(t=config.uniformity_t, uniform_weight=config.uniform_weight)
        self._source: IntentSource | None = None
        self._origin: StoreIdentity | None = None  # the first source's encoder and catalogue (see use_source)
        if source is not None and store is not None:
            raise ValueError("give source= or store= (shorthand for source=enhancer.source_for(store)), not both")
        if store is not None:
            source = self.source_for(store)
        if source is not None:
            self.use_source(source)

    def extra_repr(self) -> str:
        c = self.config
        return f"fusion={c.fusion!r}, perspectives={list(c.perspectives)}, pairing={c.pairing}, missing={c.missing!r}"

    # ---- where intents come from ------------------------------------------------------
    @property
    def source(self) -> IntentSource | None:
        """The :class:`IntentSource` that ``forward(session_ids=...)`` reads (``None`` until :meth:`use_source`).

        ``copy.deepcopy`` of the enhancer shares it; pickling drops it (use a source again after loading).
        """
        return getattr(self, "_source", None)  # absent in enhancers pickled before sources existed

    @property
    def store(self) -> IntentStore | None:
        """The store of :attr:`source` (``None`` without one)."""
        source = self.source
        return source.store if source is not None else None

    def source_for(self, store: IntentStore) -> IntentSource:
        """``store`` as a source with the missing-id policy this config needs (``"raise"``, else ``"zeros"``)."""
        return IntentSource(store, missing="raise" if self.config.missing == "raise" else "zeros")

    def use_source(self, source: IntentSource) -> IntentEnhancer:
        """Read session ids from ``source`` in ``forward(session_ids=...)``; returns ``self``.

        Raises :class:`~llm4sbr_adapter.store.StoreMismatchError` (a ``ValueError``) when the store's
        ``text_dim`` differs from the config's, lacks one of the config's perspectives, or was made by
        another text encoder or from another catalogue than the one the config names; and, naming both
        files, when its ``text_encoder`` or ``catalogue_sha256`` differs from that of the first source this
        enhancer used (an empty value counts as a value: a store that records no encoder does not pass for
        one that does). Sources of several splits (train, valid, test) may be used in turn: they differ in
        their sessions only. The config is never changed; :meth:`save_pretrained` records the first
        source's encoder and catalogue beside the weights (:meth:`saved_config`).
        """
        if not isinstance(source, IntentSource):
            raise TypeError(f"source must be an IntentSource, got {type(source).__name__}")
        wanted = "raise" if self.config.missing == "raise" else "zeros"
        if source.missing != wanted:
            raise ValueError(
                f"IntentEnhancerConfig.missing={self.config.missing!r} needs an IntentSource with "
                f"missing={wanted!r}, got {source.missing!r}"
            )
        origin = getattr(self, "_origin", None)
        if origin is not None:
            source.identity.check_same_origin(origin)
        source.check_fits(
            self.config.perspectives,
            self.config.text_dim,
            text_encoder=self.config.text_encoder,
            catalogue_sha256=self.config.catalogue_sha256,
        )
        if origin is None:
            self._origin = source.identity
        self._source = source
        return self

    def bind_store(self, store: IntentStore) -> IntentEnhancer:
        """Shorthand for ``use_source(source_for(store))``: read session ids from ``store``; returns ``self``."""
        if not isinstance(store, IntentStore):
            raise TypeError(f"store must be an IntentStore, got {type(store).__name__}")
        return self.use_source(self.source_for(store))

    def saved_config(self) -> IntentEnhancerConfig:
        """The config as :meth:`save_pretrained` writes it: empty ``text_encoder`` / ``catalogue_sha256`` filled
        in from the first source used, so that a reloaded enhancer refuses a store from another encoder or
        catalogue. ``self.config`` itself is left as constructed."""
        origin = getattr(self, "_origin", None)
        if origin is None:
            return self.config
        return dataclasses.replace(
            self.config,
            text_encoder=self.config.text_encoder or origin.text_encoder,
            catalogue_sha256=self.config.catalogue_sha256 or origin.catalogue_sha256,
        )

    def check_sessions_file(self, sessions_sha256: str, sessions_source: str | os.PathLike | None = None) -> None:
        """:meth:`IntentSource.check_sessions_file` of the current source (``ValueError`` without one)."""
        source = self.source
        if source is None:
            raise ValueError("no IntentStore is bound: pass source= (or store=) or call use_source / bind_store")
        source.check_sessions_file(sessions_sha256, sessions_source)

    # ---- checks ------------------------------------------------------------------------
    def _check_behaviours(self, h_local: torch.Tensor, h_global: torch.Tensor) -> None:
        h = self.config.hidden_size
        for name, x in (("h_local", h_local), ("h_global", h_global)):
            if not isinstance(x, torch.Tensor):
                raise ValueError(f"{name} must be a tensor [batch, {h}], got {type(x).__name__}")
            if x.dim() != 2 or x.shape[1] != h:
                raise ValueError(f"{name} must have shape [batch, {h}] (hidden_size), got {tuple(x.shape)}")
            if not x.is_floating_point():
                raise ValueError(f"{name} must be a floating tensor, got dtype {x.dtype}")
        if h_local.shape != h_global.shape:
            raise ValueError(f"h_local has shape {tuple(h_local.shape)} but h_global has shape {tuple(h_global.shape)}")
        if h_local.dtype != h_global.dtype:
            raise ValueError(f"h_local has dtype {h_local.dtype} but h_global has dtype {h_global.dtype}")
        weights = next(self.parameters()).dtype
        if h_local.dtype != weights:
            raise ValueError(
                f"h_local and h_global have dtype {h_local.dtype} but the enhancer's weights are {weights}: "
                f"cast the inputs (h.to({weights})) or the enhancer (enhancer.to({h_local.dtype}))"
            )
        if h_local.shape[0] == 0:
            raise ValueError("h_local and h_global are empty (batch size 0)")

    def _check_intents(self, intents: Mapping[str, torch.Tensor], like: torch.Tensor) -> None:
        if not isinstance(intents, Mapping):
            raise ValueError(f"intents must be a dict {{perspective: [batch, text_dim]}}, got {type(intents).__name__}")
        absent = [p for p in self.config.perspectives if p not in intents]
        if absent:
            raise ValueError(
                f"intents lack perspectives {absent}: got {sorted(intents)}, "
                f"config needs {list(self.config.perspectives)}"
            )
        want = (like.shape[0], self.config.text_dim)
        for p in self.config.perspectives:
            x = intents[p]
            if not isinstance(x, torch.Tensor):
                raise ValueError(f"intents[{p!r}] must be a tensor of shape {want}, got {type(x).__name__}")
            if tuple(x.shape) != want:
                raise ValueError(
                    f"intents[{p!r}] has shape {tuple(x.shape)}, expected {want} (batch of h_local, text_dim)"
                )
            if x.dtype != like.dtype:
                raise ValueError(f"intents[{p!r}] has dtype {x.dtype} but h_local has dtype {like.dtype}")

    # ---- forward -----------------------------------------------------------------------
    def lookup(
        self,
        session_ids: Sequence | np.ndarray | torch.Tensor,
        like: torch.Tensor,
        *,
        sessions_sha256: str | None = None,
        sessions_source: str | os.PathLike | None = None,
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        """Intent vectors ``{perspective: [batch, text_dim]}`` for ids, from the source.

        Returns the vectors (on ``like``'s device and dtype, learned substitutes already filled in
        for ``missing="learned"``) and the ``bool [batch]`` found mask (``None`` for ``"raise"``).
        With ``sessions_sha256`` the store is first checked with :meth:`check_sessions_file`.
        """
        source = self.source
        if source is None:
            raise ValueError(
                "session_ids given but no IntentStore is bound: "
                "pass source= (or store=) or call use_source / bind_store"
            )
        vecs, found = source.lookup(
            session_ids,
            perspectives=self.config.perspectives,
            like=like,
            sessions_sha256=sessions_sha256,
            sessions_source=sessions_source,
        )
        if found is not None and self.config.missing == "learned" and not bool(found.all()):
            keep = found.unsqueeze(1)
            vecs = {
                p: torch.where(keep, v, self.missing_intent[p].to(v.dtype).unsqueeze(0).expand_as(v))
                for p, v in vecs.items()
            }
        return vecs, found

    def forward(
        self,
        h_local: torch.Tensor,
        h_global: torch.Tensor | None = None,
        intents: Mapping[str, torch.Tensor] | None = None,
        session_ids: Sequence | np.ndarray | torch.Tensor | None = None,
        *,
        sessions_sha256: str | None = None,
        sessions_source: str | os.PathLike | None = None,
    ) -> EnhancerOutput:
        """Fuse intents into the session representation.

        Args:
            h_local: ``[batch, hidden]`` local behaviour embedding (e.g. last item's state).
            h_global: ``[batch, hidden]`` global behaviour embedding (e.g. attention readout). Leave it out
                (``None``) for a backbone with a single session vector (GRU4Rec, SASRec): in this
                *single-input mode* ``h_local`` is that vector and stands for both behaviours, so every
                perspective is aligned with it and fusion reads it twice (``concat``: ``[h; h; z...]``).
            intents: ``{perspective: [batch, text_dim]}`` text vectors (extra keys are ignored), or
            session_ids: ``[batch]`` ids to look up in the bound store. Give exactly one of the two.
            sessions_sha256: optional, with ``session_ids``: hex sha256 of the file the ids refer to
                (e.g. the split pickle whose row numbers they are). The bound store's
                ``sessions_sha256`` must equal it, else :class:`~llm4sbr_adapter.store.StoreMismatchError`
                (a ``ValueError``) names both files: with stores of several splits keyed by row
                number, a batch of test rows can then never read the training split's intents.
            sessions_source: optional name of that file, used in the error only.

        Returns:
            :class:`EnhancerOutput`.
        """
        if (intents is None) == (session_ids is None):
            raise ValueError("give exactly one of intents= or session_ids=")
        if session_ids is None and (sessions_sha256 is not None or sessions_source is not None):
            raise ValueError(
                "sessions_sha256= / sessions_source= describe session_ids=; they make no sense with intents="
            )
        if h_global is None:  # single-input mode: one session vector plays both behaviours
            h_global = h_local
        self._check_behaviours(h_local, h_global)
        found = None
        if session_ids is not None:
            intents, found = self.lookup(
                session_ids, h_local, sessions_sha256=sessions_sha256, sessions_source=sessions_source
            )
        assert intents is not None  # given, or looked up just above
        self._check_intents(intents, h_local)

        projected = self.project_intents(intents)
        behaviours = {"local": h_local, "global": h_global}
        session = self.fuse_session(h_local, h_global, projected)
        aux, losses = self.aux_loss(projected, behaviours, found)
        return EnhancerOutput(
            session=session, aux_loss=self.config.loss_weight * aux, projected=projected, losses=losses, found=found
        )

    def project_intents(self, intents: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``{perspective: [batch, hidden]}``: each text vector (L2-normalised with ``intent_norm``) projected."""
        out = {}
        for p in self.config.perspectives:
            x = F.normalize(intents[p], dim=-1) if self.config.intent_norm else intents[p]
            out[p] = self.project[p](x)
        return out

    def fuse_session(
        self, h_local: torch.Tensor, h_global: torch.Tensor, projected: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        """The fused session representation ``[batch, hidden]`` (dropout on the projections in training)."""
        cfg = self.config
        dropped = {p: self.dropout(z) for p, z in projected.items()} if cfg.dropout else projected
        if cfg.fusion == "concat":
            return self.fuse(torch.cat([h_local, h_global, *(dropped[p] for p in cfg.perspectives)], dim=-1))
        gated = {}
        for b, x in (("local", h_local), ("global", h_global)):
            if b in self.gates:
                paired = [dropped[p] for p in cfg.perspectives if cfg.pairing[p] == b]
                s = paired[0]
                for z in paired[1:]:
                    s = s + z
                gated[b] = torch.sigmoid(self.gates[b](torch.cat([x, s], dim=-1))) * x
            else:
                gated[b] = x
        return self.fuse(torch.cat([gated["global"], gated["local"]], dim=-1))

    def aux_loss(
        self,
        projected: Mapping[str, torch.Tensor],
        behaviours: Mapping[str, torch.Tensor],
        found: torch.Tensor | None,
    ) -> tuple[torch.Tensor, Mapping[str, dict[str, torch.Tensor]]]:
        """The unweighted sum over perspectives of alignment + uniformity, and its detached parts per perspective.

        All perspectives go through one stacked :func:`~llm4sbr_adapter.losses.normalized_align_uniform_terms`
        (one batched Gram matrix for every uniformity term, one hand-written backward). Rows without a stored
        intent (``found`` false) are left out.
        """
        cfg = self.config
        rows = None if found is None or bool(found.all()) else found
        # [2, P, B, h]: the projections, then the behaviour each is paired with
        pairs = torch.stack(
            [projected[p] for p in cfg.perspectives] + [behaviours[cfg.pairing[p]] for p in cfg.perspectives]
        )
        pairs = pairs.view(2, len(cfg.perspectives), *pairs.shape[1:])
        if rows is not None:
            pairs = pairs[:, :, rows]
        if pairs.shape[2] == 0:  # no row of this batch has a stored intent
            zero = pairs.new_zeros(())
            return zero, {p: {k: zero for k in TERM_NAMES} for p in cfg.perspectives}
        terms = normalized_align_uniform_terms(pairs, cfg.uniformity_t, cfg.uniform_weight, self.align_uniform.eps)
        parts = torch.stack([terms[k] for k in TERM_NAMES]).detach()
        losses = _PerspectiveTerms(parts, cfg.perspectives)
        return terms["loss"].sum(), losses

    # ---- persistence ---------------------------------------------------------------------
    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write ``enhancer_config.json`` and ``enhancer.safetensors`` into ``directory`` (atomically each).

        The source is not saved (it is data, not weights); pass it again to :meth:`from_pretrained`. The config
        written is :meth:`saved_config` (the first source's encoder and catalogue filled in).
        """
        save_pretrained(
            self,
            self.saved_config(),
            directory,
            config_name=CONFIG_NAME,
            weights_name=WEIGHTS_NAME,
            order={"perspectives": self.config.perspectives},
        )
        logger.info("saved intent enhancer to %s", directory)
        return Path(directory)

    @classmethod
    def from_pretrained(
        cls,
        directory: str | os.PathLike,
        store: IntentStore | None = None,
        map_location: str | torch.device = "cpu",
        *,
        source: IntentSource | None = None,
    ) -> IntentEnhancer:
        """Rebuild an enhancer saved with :meth:`save_pretrained` (optionally reading ``source``, or ``store``).

        Raises ``FileNotFoundError`` for a missing file and ``ValueError`` naming the tensors when
        the weights do not fit the config (missing or unexpected names, other shapes).
        """
        config = IntentEnhancerConfig.load(Path(directory) / CONFIG_NAME)
        model = cls(config)
        load_pretrained_weights(
            model,
            directory,
            config_name=CONFIG_NAME,
            weights_name=WEIGHTS_NAME,
            what="enhancer",
            settings=f"fusion={config.fusion!r}, perspectives={list(config.perspectives)}, missing={config.missing!r}",
            map_location=map_location,
            order={"perspectives": config.perspectives},
        )
        if source is not None and store is not None:
            raise ValueError("give source= or store=, not both")
        if store is not None:
            model.bind_store(store)
        if source is not None:
            model.use_source(source)
        return model
