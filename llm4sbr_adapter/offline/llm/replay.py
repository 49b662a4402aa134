"""Answers produced elsewhere: export the prompts, run any LLM on them, replay the answers here.

Workflow: :func:`export_prompts` writes one JSON line per prompt; the user answers them with any tool
and writes a JSONL file with ``{"prompt": ..., "answer": ...}`` or ``{"prompt_sha256": ..., "answer": ...}``
lines; :class:`ReplayBackend` then serves those answers as if it were a model.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ... import strict_json
from ...atomic_files import atomic_open
from ...errors import Llm4sbrError
from ...hashing import sha256_file
from .base import GenerationConfig, LLMBackend, truncate_at_stop

__all__ = ["ReplayBackend", "export_prompts", "prompt_text_sha256", "ReplayFormatError"]


class ReplayFormatError(Llm4sbrError, ValueError):
    """A line of a replay or prompt file is not what it should be (names file and line)."""


def prompt_text_sha256(prompt: str) -> str:
    """Hex sha256 of the UTF-8 prompt text (how replay files refer to prompts)."""
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()


class ReplayBackend(LLMBackend):
    """Serves answers read from a JSONL file.

    Each non-empty line is ``{"prompt": str, "answer": str}`` or ``{"prompt_sha256": hex, "answer": str}``.
    A prompt answered on two lines must have the same answer on both (two different answers are a
    :class:`ReplayFormatError` naming both lines); keys are unique within a line (strict JSON).

    Raises:
        ReplayFormatError: at construction, for a malformed line (file and line number in the message).
        KeyError: in :meth:`generate`, for a prompt the file has no answer for (sha256 and file named).
    """

    def __init__(self, jsonl_path: str | os.PathLike) -> None:
        self.path = Path(jsonl_path).expanduser()
        if not self.path.is_file():
            raise FileNotFoundError(f"replay file not found: {self.path}")
        self.answers: dict[str, str] = {}
        lines: dict[str, int] = {}  # the line of each prompt's first answer
        opener = gzip.open if self.path.suffix == ".gz" else open  # an exported answers file is gzipped
        with opener(self.path, "rt", encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                where = f"{self.path}:{lineno}"
                try:
                    rec = strict_json.loads(line)
                except json.JSONDecodeError as e:
                    raise ReplayFormatError(f"{where}: not valid JSON ({e.msg})") from None
                if not isinstance(rec, dict):
                    raise ReplayFormatError(f"{where}: expected a JSON object, got {type(rec).__name__}")
                if "answer" not in rec or not isinstance(rec["answer"], str):
                    raise ReplayFormatError(f"{where}: missing string field 'answer'")
                if isinstance(rec.get("prompt"), str):
                    sha = prompt_text_sha256(rec["prompt"])
                    given = rec.get("prompt_sha256")
                    if given is not None and given != sha:
                        raise ReplayFormatError(
                            f"{where}: prompt_sha256 {given} does not match the prompt text (sha256 {sha})"
                        )
                elif isinstance(rec.get("prompt_sha256"), str):
                    sha = rec["prompt_sha256"].strip().lower()
                    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
                        raise ReplayFormatError(f"{where}: prompt_sha256 is not a 64-digit hex sha256")
                else:
                    raise ReplayFormatError(f"{where}: needs a string field 'prompt' or 'prompt_sha256'")
                if sha in self.answers and self.answers[sha] != rec["answer"]:
                    raise ReplayFormatError(
                        f"{where}: a second, different answer for the prompt answered on line {lines[sha]} "
                        f"(sha256 {sha}): keep one"
                    )
                self.answers[sha] = rec["answer"]
                lines.setdefault(sha, lineno)
        self.model_id = f"replay:{self.path.name}:sha256={sha256_file(self.path)}"

    def __len__(self) -> int:
        return len(self.answers)

    def generate(self, prompts: Sequence[str], config: GenerationConfig | None = None) -> list[str]:
        """Look every prompt up; answers are returned as stored (cut at ``config.stop``)."""
        config = config or GenerationConfig()
        out = []
        for i, p in enumerate(prompts):
            sha = prompt_text_sha256(p)
            try:
                out.append(truncate_at_stop(self.answers[sha], config.stop))
            except KeyError:
                raise KeyError(
                    f"no answer for prompt #{i} (prompt_sha256 {sha}) in replay file {self.path}; "
                    f"the prompt starts: {p[:80]!r}"
                ) from None
        return out


def export_prompts(path: str | os.PathLike, records: Iterable[Mapping[str, Any]]) -> Path:
    """Write prompts to answer elsewhere, one JSON line each, atomically (temp file + rename).

    Args:
        path: output ``.jsonl`` file.
        records: mappings with ``session_id``, ``perspective`` and ``prompt``; ``prompt_sha256`` is
            computed and added. Other keys are ignored.

    Returns:
        The path written.
    """
    out = Path(path).expanduser()
    with atomic_open(out, "w") as f:
        for n, rec in enumerate(records):
            missing = [k for k in ("session_id", "perspective", "prompt") if k not in rec]
            if missing:
                raise ValueError(f"export_prompts record #{n} lacks {', '.join(missing)}")
            prompt = str(rec["prompt"])
            sid = rec["session_id"]
            line = {
                "session_id": sid if isinstance(sid, str) else (int(sid) if hasattr(sid, "__index__") else str(sid)),
                "perspective": str(rec["perspective"]),
                "prompt": prompt,
                "prompt_sha256": prompt_text_sha256(prompt),
            }
            f.write(json.dumps(line, ensure_ascii=False) + "\n")
    return out
