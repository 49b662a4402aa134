"""Read a model's two behaviour embeddings where it forms them, with forward hooks: :class:`BehaviourTap`.

A spec names the place (``a`` and ``b`` are ``local`` and ``global``, in the order the model uses them):

* ``"output"``: the model has one session vector (GRU4Rec, SASRec): it is ``h_local`` and
  ``h_global`` is ``None`` (the enhancer's single-input mode);
* ``"<module>.input:<a>,<b>"``: the submodule's (first) input is the concatenation ``[a; b]`` along the
  last dimension, as SR-GNN's ``linear_transform([a; ht])`` or NARM's ``b([c_local; c_global])``;
* ``"<module>.outputs:<a>,<b>"``: the submodule is called twice per forward pass, first producing ``a``
  and then ``b``, as STAMP's shared ``tanh``.

Hooks record only inside ``with tap:``, so the model runs unchanged elsewhere.
"""

from __future__ import annotations

import re
from typing import Any

import torch
from torch import nn

__all__ = ["BehaviourTap", "parse_spec"]

_SPEC = re.compile(r"^(?P<module>[\w.]+)\.(?P<kind>input|outputs):(?P<a>local|global),(?P<b>local|global)$")


def parse_spec(spec: str) -> tuple[str, str, tuple[str, str]]:
    """``(kind, module, (a, b))`` of a spec; ``("output", "", ("local", "global"))`` for ``"output"``."""
    if spec == "output":
        return "output", "", ("local", "global")
    match = _SPEC.match(spec)
    if match is None or match["a"] == match["b"]:
        raise ValueError(
            f"behaviours spec {spec!r} is not 'output', '<module>.input:<a>,<b>' or '<module>.outputs:<a>,<b>' "
            "with a, b = local, global in either order"
        )
    return match["kind"], match["module"], (match["a"], match["b"])


class BehaviourTap:
    """Captures ``(h_local, h_global)`` from ``model`` as ``spec`` describes (see the module docstring)."""

    def __init__(self, model: nn.Module, spec: str) -> None:
        self.spec = spec
        self.kind, name, self.order = parse_spec(spec)
        self._seen: list[torch.Tensor] = []
        self._active = False
        if self.kind == "output":
            return
        try:
            module = model.get_submodule(name)
        except AttributeError:
            names = sorted(n for n, _ in model.named_modules() if n)
            raise ValueError(
                f"behaviours spec {spec!r}: {type(model).__name__} has no submodule {name!r} (it has {names})"
            ) from None
        if self.kind == "input":
            module.register_forward_pre_hook(self._record_input)
        else:
            module.register_forward_hook(self._record_output)

    def _record_input(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        if self._active:
            self._seen.append(args[0])

    def _record_output(self, module: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> None:
        if self._active:
            self._seen.append(output)

    def __enter__(self) -> BehaviourTap:
        self._seen = []
        self._active = True
        return self

    def __exit__(self, *exc: object) -> None:
        self._active = False

    def behaviours(self, output: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(h_local, h_global)`` of the forward pass that produced ``output`` (``h_global`` ``None`` for "output")."""
        if self.kind == "output":
            if output.dim() != 2:
                raise ValueError(f"behaviours 'output': forward returned shape {tuple(output.shape)}, not [batch, d]")
            return output, None
        want = 1 if self.kind == "input" else 2
        if len(self._seen) != want:
            raise ValueError(f"behaviours spec {self.spec!r}: the module ran {len(self._seen)} times, expected {want}")
        if self.kind == "input":
            x = self._seen[0]
            if x.shape[-1] % 2:
                raise ValueError(f"behaviours spec {self.spec!r}: input width {x.shape[-1]} is not two equal halves")
            parts = x.split(x.shape[-1] // 2, dim=-1)
        else:
            parts = tuple(self._seen)
        named = dict(zip(self.order, parts, strict=True))
        return named["local"], named["global"]
