"""What a build did (:class:`BuildReport`), where its answer cache lives, and the timer of its stages."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger("llm4sbr_adapter.offline.pipeline")

__all__ = ["BuildReport", "StageTimer", "default_cache_path", "stage_timer"]

# ``with stage("name"):`` around one stage of a build (see :func:`stage_timer`)
StageTimer = Callable[[str], contextlib.AbstractContextManager[None]]


def default_cache_path(output: str | os.PathLike) -> Path:
    """The answer cache beside a store: ``<output>.answers.sqlite3``."""
    return Path(str(output) + ".answers.sqlite3")


@dataclass
class BuildReport:
    """What a build did."""

    sessions: int = 0
    perspectives: list[str] = field(default_factory=list)
    prompts_total: int = 0
    unique_prompts: int = 0
    asked: int = 0
    cached: int = 0
    empty_answers: dict[str, int] = field(default_factory=dict)
    zero_intents: int = 0
    untitled_items: int = 0
    distinct_items: int = 0
    untitled_sessions: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    output: Path | None = None
    cache_path: Path | None = None
    exported_prompts: Path | None = None
    shard: str = ""
    dry_run: bool = False
    llm: str = ""
    text_encoder: str = ""
    sample_prompts: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("output", "cache_path", "exported_prompts"):
            d[key] = None if d[key] is None else str(d[key])
        return d

    def summary(self) -> str:
        """A short multi-line, human-readable summary."""
        lines = [
            f"sessions:        {self.sessions}" + (f" (shard {self.shard})" if self.shard else ""),
            f"perspectives:    {', '.join(self.perspectives)}",
            f"prompts:         {self.prompts_total} ({self.unique_prompts} distinct)",
        ]
        lines.append(f"untitled items:  {self.untitled_items} of the sessions' {self.distinct_items} distinct items")
        if self.untitled_sessions:
            lines.append(
                f"untitled sessions: {self.untitled_sessions} (no titled item: not asked, zero intent; skip_item)"
            )
        if self.dry_run:
            lines.append("LLM:             not called (dry run)")
        else:
            lines.append(f"LLM answers:     {self.asked} asked, {self.cached} from cache ({self.llm})")
            empty = ", ".join(f"{k}={v}" for k, v in self.empty_answers.items())
            lines.append(f"empty answers:   {sum(self.empty_answers.values())} ({empty})")
            if self.zero_intents:
                lines.append(f"zero intents:    {self.zero_intents} (no answer and no titled item in view)")
            lines.append(f"text encoder:    {self.text_encoder}")
        stages = ", ".join(f"{k} {v:.1f}s" for k, v in self.seconds.items())
        lines.append(f"seconds:         {stages} (total {sum(self.seconds.values()):.1f}s)")
        if self.exported_prompts:
            lines.append(f"prompts JSONL:   {self.exported_prompts}")
        if self.cache_path and not self.dry_run:
            lines.append(f"answer cache:    {self.cache_path}")
        lines.append(f"output:          {self.output if self.output else '(none)'}")
        return "\n".join(lines)


def stage_timer(seconds: dict[str, float]) -> StageTimer:
    """``with stage("name"):`` logs the stage and adds its wall time to ``seconds[name]``."""

    @contextlib.contextmanager
    def stage(name: str) -> Iterator[None]:
        logger.info("stage %s ...", name)
        start = time.perf_counter()
        try:
            yield
        finally:
            seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - start

    return stage
