"""Stage ``render``: one prompt per (session, perspective), and the catalogue rows each prompt shows."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from ...progress import bars_enabled
from ..candidates import candidate_lines
from ..config import BuildConfig
from ..inputs.catalogue import Catalogue
from ..inputs.sessions import SessionSet
from ..llm.replay import export_prompts
from ..prompts import Perspective, item_lines, render_prompt, uses_candidates, visible_items
from ..report import BuildReport

logger = logging.getLogger("llm4sbr_adapter.offline.pipeline")

__all__ = ["RenderedPrompts", "record_prompts", "render_prompts"]


@dataclass
class RenderedPrompts:
    """One prompt per (perspective, session), and the catalogue rows of the titled items each prompt shows.

    A session without a titled item (``skip_item`` only) has no prompt (``None``) and no rows: it is not asked.
    """

    session_ids: list[Any]
    perspectives: list[Perspective]
    texts: dict[str, list[str | None]]  # perspective -> one prompt per session, in session order
    shown_rows: dict[str, list[list[int]]]  # perspective -> per session, catalogue rows in view
    untitled: set[int] = field(default_factory=set)  # sessions (rows) with no titled item

    def flat(self) -> list[str | None]:
        """Every prompt, perspective by perspective (the order answers come back in); ``None``: not asked."""
        return [text for p in self.perspectives for text in self.texts[p.name]]

    def labels(self) -> list[str]:
        """A name for each prompt of :meth:`flat`, for error messages."""
        return [f"session {sid!r}, perspective {p.name!r}" for p in self.perspectives for sid in self.session_ids]

    def asked(self) -> list[tuple[int, str]]:
        """``(position in flat(), prompt)`` of every prompt that is asked."""
        return [(k, text) for k, text in enumerate(self.flat()) if text is not None]


def render_prompts(
    sessions: SessionSet, catalogue: Catalogue, perspectives: Sequence[Perspective], config: BuildConfig
) -> RenderedPrompts:
    """Render every session for every perspective (targets are never shown)."""
    n, ids = len(sessions), sessions.ids.tolist()
    out = RenderedPrompts(
        ids, list(perspectives), {p.name: [] for p in perspectives}, {p.name: [] for p in perspectives}
    )
    listed = [p for p in perspectives if uses_candidates(p)]
    candidates = candidate_lines(sessions, catalogue, config) if listed else None
    for i in tqdm(
        range(n), desc="render prompts", unit="session", disable=not bars_enabled(config.progress) or n < 1000
    ):
        lines, rows = _session_view(sessions, i, ids[i], catalogue, config)
        if not lines:  # only under skip_item: the session is not asked and gets a zero intent
            out.untitled.add(i)
            for p in perspectives:
                out.texts[p.name].append(None)
                out.shown_rows[p.name].append([])
            continue
        for p in perspectives:
            shown = candidates[i] if candidates is not None and p in listed else None
            out.texts[p.name].append(render_prompt(p, lines, config.max_items, shown))
            view = visible_items(rows, p, config.max_items)  # the rows of the lines the prompt lists
            out.shown_rows[p.name].append([r for r in view if r is not None])
    return out


def _session_view(
    sessions: SessionSet, i: int, sid: Any, catalogue: Catalogue, config: BuildConfig
) -> tuple[list[str], list[int | None]]:
    """Session ``i``'s item lines and, aligned with them, each line's catalogue row (``None``: an id-only line)."""
    seq = sessions.sequences[i]
    where = f"{sessions.source}: {sessions.line_label} {sessions.lines[i]}" if sessions.lines else sessions.source
    lines = item_lines(
        seq, catalogue, on_missing_title=config.on_missing_title, session_id=sid, source=where, with_ids=config.item_ids
    )
    rows = [catalogue.row(item) for item in seq]
    if config.on_missing_title == "skip_item":
        rows = [r for r in rows if r is not None]
    return lines, rows


def record_prompts(report: BuildReport, prompts: RenderedPrompts, config: BuildConfig) -> None:
    """Counts and a few sample prompts into the report; every prompt to ``config.export_prompts`` if set."""
    asked = [text for text in prompts.flat() if text is not None]
    report.prompts_total, report.unique_prompts = len(asked), len(set(asked))
    report.untitled_sessions = len(prompts.untitled)
    for p in prompts.perspectives:
        pairs = [(sid, text) for sid, text in zip(prompts.session_ids, prompts.texts[p.name], strict=True) if text]
        for sid, text in pairs[:2]:
            report.sample_prompts.append({"session_id": sid, "perspective": p.name, "prompt": text})
    if config.export_prompts:
        report.exported_prompts = _export_prompts(Path(config.export_prompts), prompts)
    logger.info("%d prompts (%d distinct)", report.prompts_total, report.unique_prompts)


def _export_prompts(path: Path, prompts: RenderedPrompts) -> Path:
    """Write every prompt as one JSON line (``session_id``, ``perspective``, ``prompt``, ``prompt_sha256``),
    the format :class:`~llm4sbr_adapter.offline.llm.replay.ReplayBackend` answers files refer to."""
    records = (
        {"session_id": sid, "perspective": p.name, "prompt": prompt}
        for p in prompts.perspectives
        for sid, prompt in zip(prompts.session_ids, prompts.texts[p.name], strict=True)
        if prompt is not None
    )
    out = export_prompts(path, records)
    logger.info("wrote %d prompts to %s", len(prompts.asked()), out)
    return out
