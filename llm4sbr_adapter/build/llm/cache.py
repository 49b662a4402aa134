"""Persistent answer cache (sqlite) and the resumable "answer these prompts" loop.

Every finished batch is committed at once, so a build that is killed loses at most the batch in
flight, and rerunning it asks the backend only for prompts without a cached answer.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from .base import GenerationConfig, LLMBackend, LLMError

__all__ = ["AnswerCache", "AnswerResult", "answer_prompts", "cache_key"]

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    key TEXT PRIMARY KEY,
    model_id TEXT NOT NULL,
    prompt TEXT NOT NULL,
    config TEXT NOT NULL,
    answer TEXT NOT NULL,
    created_at REAL NOT NULL
)
"""


def _config_json(config: GenerationConfig) -> str:
    return json.dumps(config.to_dict(), sort_keys=True, separators=(",", ":"))


def cache_key(model_id: str, prompt: str, config: GenerationConfig) -> str:
    """sha256 hex of (model identity, generation settings, prompt text)."""
    h = hashlib.sha256()
    for part in (model_id, _config_json(config), prompt):
        data = part.encode("utf-8")
        h.update(len(data).to_bytes(8, "little"))  # length prefix: no ambiguity between fields
        h.update(data)
    return h.hexdigest()


class AnswerCache:
    """sqlite3 file (WAL journal) mapping :func:`cache_key` -> raw answer.

    One table ``answers(key, model_id, prompt, config, answer, created_at)``. Safe to share between
    threads of one process (a lock serialises access) and between processes (sqlite locking).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._conn = sqlite3.connect(str(self.path), timeout=60.0, check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute(_SCHEMA)
            self._conn.commit()
        except sqlite3.DatabaseError as e:
            raise LLMError(f"cannot open answer cache {self.path}: {e}") from None

    def get_many(self, keys: Sequence[str]) -> dict[str, str]:
        """Cached answers for the keys that have one."""
        found: dict[str, str] = {}
        keys = list(keys)
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = keys[start:start + 500]
                marks = ",".join("?" * len(chunk))
                for k, a in self._conn.execute(f"SELECT key, answer FROM answers WHERE key IN ({marks})", chunk):
                    found[k] = a
        return found

    def get(self, model_id: str, prompt: str, config: GenerationConfig) -> str | None:
        return self.get_many([cache_key(model_id, prompt, config)]).get(cache_key(model_id, prompt, config))

    def put_many(self, model_id: str, items: Iterable[tuple[str, str]], config: GenerationConfig) -> int:
        """Store ``(prompt, answer)`` pairs in one transaction (committed before returning)."""
        cfg = _config_json(config)
        now = time.time()
        rows = [(cache_key(model_id, p, config), model_id, p, cfg, a, now) for p, a in items]
        with self._lock:
            with self._conn:  # one transaction, committed on exit
                self._conn.executemany(
                    "INSERT OR REPLACE INTO answers (key, model_id, prompt, config, answer, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)", rows)
        return len(rows)

    def put(self, model_id: str, prompt: str, config: GenerationConfig, answer: str) -> None:
        self.put_many(model_id, [(prompt, answer)], config)

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM answers").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None  # type: ignore[assignment]

    def __enter__(self) -> "AnswerCache":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class AnswerResult:
    """Outcome of :func:`answer_prompts`.

    Attributes:
        answers: raw answers, one per input prompt, in input order.
        asked: distinct prompts sent to the backend in this call.
        cached: distinct prompts answered from the cache.
    """

    answers: list[str]
    asked: int
    cached: int


def answer_prompts(
    backend: LLMBackend,
    prompts: Sequence[str],
    config: GenerationConfig | None = None,
    cache: AnswerCache | None = None,
    batch_size: int = 16,
    progress: bool = True,
    desc: str = "LLM",
) -> AnswerResult:
    """Answer every prompt, asking the backend only for distinct prompts with no cached answer.

    Identical prompts are asked once. Uncached prompts go to ``backend.generate`` in chunks of
    ``batch_size``, and each chunk's answers are committed to ``cache`` before the next chunk starts.
    The order is first-seen (sorting by length inside a chunk is the backend's job), or sorted by text
    when ``backend.reuses_prompt_prefix`` is true, so that a backend that keeps the previous prompt's
    key/value cache re-reads only what follows the shared opening. Answers are returned in input order
    either way.
    """
    config = config or GenerationConfig()
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    prompts = [str(p) for p in prompts]
    unique = list(dict.fromkeys(prompts))
    answers: dict[str, str] = {}
    if cache is not None:
        keys = [cache_key(backend.model_id, p, config) for p in unique]
        hits = cache.get_many(keys)
        for p, k in zip(unique, keys):
            if k in hits:
                answers[p] = hits[k]
    cached = len(answers)
    todo = [p for p in unique if p not in answers]
    if getattr(backend, "reuses_prompt_prefix", False):
        todo.sort()
    logger.info("%s: %d prompts, %d distinct, %d cached, %d to ask (%s)",
                desc, len(prompts), len(unique), cached, len(todo), backend.model_id)

    bar = None
    if progress and todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc=desc, unit="prompt", dynamic_ncols=True)
    try:
        for start in range(0, len(todo), int(batch_size)):
            chunk = todo[start:start + int(batch_size)]
            got = backend.generate(chunk, config)
            if len(got) != len(chunk):
                raise LLMError(f"{type(backend).__name__} returned {len(got)} answers for {len(chunk)} prompts")
            if cache is not None:
                cache.put_many(backend.model_id, zip(chunk, got), config)
            answers.update(zip(chunk, got))
            if bar is not None:
                bar.update(len(chunk))
    finally:
        if bar is not None:
            bar.close()
    return AnswerResult(answers=[answers[p] for p in prompts], asked=len(todo), cached=cached)
