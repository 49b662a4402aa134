"""The answers of an SQLite answer cache as a small, committable replay file (gzip-compressed JSONL).

LLM answers cost hours to remake on a CPU, and a cache is a local SQLite file that does not travel well.
:func:`export_answers` writes one JSON line per cached answer::

    {"prompt_sha256": "...", "perspective": "long", "model_id": "llamacpp:gguf-sha256:...",
     "generation": {...}, "answer": "..."}

(``perspective`` read from the prompt's request line, ``null`` when no known qualifier is there). The file
is what ``--llm replay:FILE`` reads (:class:`~.replay.ReplayBackend`, ``.gz`` or not), so anyone can rebuild
the stores from it without an LLM. Lines are sorted by prompt hash and gzip writes no timestamp, so an
export of the same answers is the same file byte for byte. One file holds one model's answers: a cache
that holds several models' needs ``model_id``.
"""

from __future__ import annotations

import gzip
import json
import os
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

from ...atomic_files import atomic_open
from ...strict_json import loads as strict_loads
from .base import GenerationConfig
from .cache import AnswerCache, cache_key
from .replay import prompt_text_sha256

__all__ = ["export_answers", "perspective_of", "seed_cache"]

# The request line of every built-in template ends "... the user's <qualifier> interests ..."
_QUALIFIERS = {"long term": "long", "short term": "short"}


def perspective_of(prompt: str, qualifiers: dict[str, str] | None = None) -> str | None:
    """The perspective whose qualifier the prompt's last line names (``None`` when none or several do)."""
    last = prompt.rstrip().rsplit("\n", 1)[-1]
    found = {name for words, name in (qualifiers or _QUALIFIERS).items() if f"user's {words} interests" in last}
    return found.pop() if len(found) == 1 else None


def _rows(cache: Path, model_id: str | None) -> Iterable[tuple[str, str, str, str]]:
    """``(model_id, prompt, generation JSON, answer)`` of every cached answer (of one model when given)."""
    if not cache.is_file():
        raise FileNotFoundError(f"answer cache not found: {cache}")
    con = sqlite3.connect(f"file:{cache}?mode=ro", uri=True)
    try:
        query = "SELECT model_id, prompt, config, answer FROM answers"
        yield from con.execute(query + (" WHERE model_id = ?" if model_id else ""), (model_id,) if model_id else ())
    finally:
        con.close()


def export_answers(
    cache: str | os.PathLike, out: str | os.PathLike, *, model_id: str | None = None
) -> tuple[Path, int]:
    """Write the cache's answers (of ``model_id`` only, when given) to ``out`` (gzip when it ends ``.gz``),
    atomically; returns the path and the number of lines."""
    records = []
    for mid, prompt, config, answer in _rows(Path(cache), model_id):
        records.append(
            {
                "prompt_sha256": prompt_text_sha256(prompt),
                "perspective": perspective_of(prompt),
                "model_id": mid,
                "generation": json.loads(config),
                "answer": answer,
            }
        )
    models = sorted({r["model_id"] for r in records})
    if len(models) > 1:
        raise ValueError(f"{cache}: answers of {len(models)} models ({', '.join(models)}); choose one with model_id")
    records.sort(key=lambda r: r["prompt_sha256"])
    text = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records).encode("utf-8")
    path = Path(out)
    with atomic_open(path, "wb") as handle:
        handle.write(gzip.compress(text, mtime=0) if path.suffix == ".gz" else text)
    return path, len(records)


def seed_cache(
    cache: AnswerCache, path: str | os.PathLike, model_id: str, config: GenerationConfig, prompts: Sequence[str]
) -> int:
    """Put the answers of an exported file into ``cache`` for those of ``prompts`` it holds and the cache lacks,
    so a build on a new machine asks the model only the rest; returns how many were added.

    Only answers of the same model and generation settings are taken: another model's are an error, since
    mixing them would silently change the store.
    """
    wanted = {prompt_text_sha256(p): p for p in dict.fromkeys(prompts)}
    cached = cache.get_many([cache_key(model_id, p, config) for p in wanted.values()])
    generation = json.loads(json.dumps(config.to_dict()))
    added = []
    for lineno, rec in enumerate(_records(Path(path)), 1):
        prompt = wanted.get(rec["prompt_sha256"])
        if prompt is None or cache_key(model_id, prompt, config) in cached:
            continue
        if rec["model_id"] != model_id or rec["generation"] != generation:
            raise ValueError(
                f"{path}: line {lineno}: answer of model {rec['model_id']!r} with {rec['generation']}, "
                f"but this build asks {model_id!r} with {generation}"
            )
        added.append((prompt, rec["answer"]))
    return cache.put_many(model_id, added, config) if added else 0


def _records(path: Path) -> Iterable[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield strict_loads(line)
