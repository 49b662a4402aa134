"""Persistent answer cache (sqlite) and the resumable "answer these prompts" loop.

Every finished batch is committed at once, so a build that is killed loses at most the batch in
flight, and rerunning it asks the backend only for prompts without a cached answer.

Builds that share one cache file (shards, or a build started twice) share the work too: before
asking a batch, a build *claims* its prompts (a row in ``claims`` with an owner and an expiry). Another
build skips prompts claimed by someone else, asks the rest, and then waits for the claimed ones'
answers to appear in the cache. A live build renews its claims; a killed build's claims expire after
``lease_seconds`` and are then taken over.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import socket
import sqlite3
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from ...progress import bars_enabled
from .base import GenerationConfig, LLMBackend, LLMError

__all__ = ["AnswerCache", "AnswerResult", "ClaimResult", "answer_prompts", "cache_key"]

logger = logging.getLogger(__name__)

#: Seconds a claim lives without renewal (a killed build's prompts are free again after this; at
#: once when that build ran on this machine, see :func:`_owner_is_gone`).
DEFAULT_LEASE_SECONDS = 60.0
#: Seconds between looks at the cache while waiting for prompts claimed by another build.
DEFAULT_POLL_SECONDS = 1.0
_SQL_CHUNK = 500  # keys per "IN (...)" list
_OPEN_SECONDS = 60.0  # sqlite busy timeout, and how long opening retries while another build creates the file

_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS answers (
    key TEXT PRIMARY KEY,
    model_id TEXT NOT NULL,
    prompt TEXT NOT NULL,
    config TEXT NOT NULL,
    answer TEXT NOT NULL,
    created_at REAL NOT NULL
)
""",
    """
CREATE TABLE IF NOT EXISTS claims (
    key TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires_at REAL NOT NULL
)
""",
)


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


@dataclass
class ClaimResult:
    """Outcome of :meth:`AnswerCache.claim` for a list of keys.

    Attributes:
        claimed: keys now leased to the caller (in the order given), at most ``limit``.
        answered: keys that already have an answer, with it.
        busy: keys leased to another owner whose claim has not expired.
    Keys in none of the three were free but beyond ``limit``.
    """

    claimed: list[str] = field(default_factory=list)
    answered: dict[str, str] = field(default_factory=dict)
    busy: list[str] = field(default_factory=list)


def _new_owner() -> str:
    """A claim owner name: ``host:pid:random`` (unique per :func:`answer_prompts` call)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def _owner_is_gone(owner: str) -> bool:
    """Whether ``owner`` names a process of this machine that no longer runs (POSIX only).

    A killed build's claims then count as expired at once, so rerunning it does not wait a lease.
    """
    parts = owner.rsplit(":", 2)  # host:pid:random
    if os.name != "posix" or len(parts) != 3 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except OSError:  # e.g. another user's process: it exists
        return False
    return False


def _chunks(keys: Sequence[str]) -> Iterable[tuple[list[str], str]]:
    """``keys`` in pieces small enough for one ``IN (...)`` list, each with its ``?,?,...`` marks."""
    for start in range(0, len(keys), _SQL_CHUNK):
        chunk = list(keys[start : start + _SQL_CHUNK])
        yield chunk, ",".join("?" * len(chunk))


class AnswerCache:
    """sqlite3 file (WAL journal) mapping :func:`cache_key` -> raw answer, plus prompt claims.

    Tables ``answers(key, model_id, prompt, config, answer, created_at)`` and
    ``claims(key, owner, expires_at)``. Safe to share between threads of one process (a lock
    serialises access) and between processes (sqlite locking).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        deadline = time.monotonic() + _OPEN_SECONDS
        while True:
            try:
                self._conn = self._connect()
                return
            except sqlite3.OperationalError as e:  # another build is creating the same file: try again
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise LLMError(f"cannot open answer cache {self.path}: {e}") from None
                time.sleep(0.02 + 0.08 * random.random())
            except sqlite3.DatabaseError as e:
                raise LLMError(f"cannot open answer cache {self.path}: {e}") from None

    def _connect(self) -> sqlite3.Connection:
        """Open the file, switch it to WAL and create the tables (closed again if any step fails)."""
        conn = sqlite3.connect(str(self.path), timeout=_OPEN_SECONDS, check_same_thread=False)
        try:
            conn.execute("PRAGMA journal_mode=WAL")  # may fail "locked" at once, busy timeout or not
            conn.execute("PRAGMA synchronous=NORMAL")
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.commit()
        except BaseException:
            conn.close()
            raise
        return conn

    def _answers_for(self, keys: Sequence[str]) -> dict[str, str]:
        """Cached answers of ``keys`` (caller holds the lock)."""
        found: dict[str, str] = {}
        for chunk, marks in _chunks(keys):
            found.update(self._conn.execute(f"SELECT key, answer FROM answers WHERE key IN ({marks})", chunk))
        return found

    def get_many(self, keys: Sequence[str]) -> dict[str, str]:
        """Cached answers for the keys that have one."""
        with self._lock:
            return self._answers_for(list(keys))

    def get(self, model_id: str, prompt: str, config: GenerationConfig) -> str | None:
        return self.get_many([cache_key(model_id, prompt, config)]).get(cache_key(model_id, prompt, config))

    def put_many(self, model_id: str, items: Iterable[tuple[str, str]], config: GenerationConfig) -> int:
        """Store ``(prompt, answer)`` pairs and drop their claims, in one transaction (committed before returning)."""
        cfg = _config_json(config)
        now = time.time()
        rows = [(cache_key(model_id, p, config), model_id, p, cfg, a, now) for p, a in items]
        with self._lock, self._conn:  # one transaction, committed on exit
            self._conn.executemany(
                "INSERT OR REPLACE INTO answers (key, model_id, prompt, config, answer, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
            self._conn.executemany("DELETE FROM claims WHERE key = ?", [(r[0],) for r in rows])
        return len(rows)

    def put(self, model_id: str, prompt: str, config: GenerationConfig, answer: str) -> None:
        self.put_many(model_id, [(prompt, answer)], config)

    def claim(
        self, keys: Sequence[str], owner: str, lease_seconds: float = DEFAULT_LEASE_SECONDS, limit: int | None = None
    ) -> ClaimResult:
        """Lease the free ``keys`` (no answer, no live claim by another owner) to ``owner``, at most ``limit``.

        Expired claims are dropped first; the check and the new claims are one ``BEGIN IMMEDIATE``
        transaction, so two builds never claim the same key.
        """
        keys = list(dict.fromkeys(keys))
        now = time.time()
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                result = self._claim_locked(keys, owner, now, now + float(lease_seconds), limit)
                self._conn.commit()
            except BaseException:
                self._conn.rollback()
                raise
        return result

    def _claim_locked(self, keys: list[str], owner: str, now: float, expires: float, limit: int | None) -> ClaimResult:
        self._conn.execute("DELETE FROM claims WHERE expires_at <= ?", (now,))
        answered = self._answers_for(keys)
        holders: dict[str, str] = {}
        for chunk, marks in _chunks(keys):
            holders.update(self._conn.execute(f"SELECT key, owner FROM claims WHERE key IN ({marks})", chunk))
        for gone in {o for o in holders.values() if o != owner and _owner_is_gone(o)}:
            self._conn.execute("DELETE FROM claims WHERE owner = ?", (gone,))
            holders = {k: o for k, o in holders.items() if o != gone}
        free = [k for k in keys if k not in answered and holders.get(k, owner) == owner]
        claimed = free if limit is None else free[: max(0, int(limit))]
        self._conn.executemany(
            "INSERT OR REPLACE INTO claims (key, owner, expires_at) VALUES (?, ?, ?)",
            [(k, owner, expires) for k in claimed],
        )
        busy = [k for k in keys if k not in answered and holders.get(k, owner) != owner]
        return ClaimResult(claimed=claimed, answered=answered, busy=busy)

    def renew(self, owner: str, lease_seconds: float = DEFAULT_LEASE_SECONDS) -> int:
        """Push back the expiry of every claim of ``owner``; returns how many it holds."""
        with self._lock, self._conn:
            cur = self._conn.execute(
                "UPDATE claims SET expires_at = ? WHERE owner = ?", (time.time() + float(lease_seconds), owner)
            )
        return int(cur.rowcount)

    def release(self, owner: str) -> None:
        """Drop every claim of ``owner`` (its unanswered prompts are free for other builds at once)."""
        with self._lock, self._conn:
            self._conn.execute("DELETE FROM claims WHERE owner = ?", (owner,))

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM answers").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None  # type: ignore[assignment]

    def __enter__(self) -> AnswerCache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class AnswerResult:
    """Outcome of :func:`answer_prompts`.

    Attributes:
        answers: raw answers, one per input prompt, in input order.
        asked: distinct prompts sent to the backend in this call.
        cached: distinct prompts answered from the cache (including answers another build sharing
            the cache committed while this call waited for them).
    """

    answers: list[str]
    asked: int
    cached: int


class _InlineExecutor:
    """Runs each submitted call at once in the calling thread (one batch at a time, no extra thread)."""

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args))
        except BaseException as err:  # handed back to the caller by future.result()
            future.set_exception(err)
        return future

    def shutdown(self, wait: bool = True) -> None:
        """Nothing to stop."""


class _Heartbeat:
    """Daemon thread renewing an owner's claims every third of the lease while a build runs."""

    def __init__(self, cache: AnswerCache, owner: str, lease_seconds: float) -> None:
        self._cache, self._owner, self._lease = cache, owner, float(lease_seconds)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="llm-claims-heartbeat", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._lease / 3):
            try:
                self._cache.renew(self._owner, self._lease)
            except (sqlite3.Error, AttributeError) as err:  # locked or closed: the claims simply expire
                logger.warning("could not renew the prompt claims in %s: %s", self._cache.path, err)

    def stop(self) -> None:
        """Stop renewing (returns once the thread has ended)."""
        self._stop.set()
        self._thread.join()


class _AskLoop:
    """Asks the uncached prompts batch by batch, committing each batch, sharing the work through claims.

    Up to ``workers`` batches are in flight at once (``backend.concurrency // batch_size``, at least
    one), so a server backend's connections stay busy while each batch remains the commit unit.
    Prompts another build has claimed wait in :attr:`waiting` until their answers appear in the cache
    or their claims expire.
    """

    def __init__(
        self,
        backend: LLMBackend,
        config: GenerationConfig,
        cache: AnswerCache | None,
        batch_size: int,
        labels: dict[str, str] | None,
        lease_seconds: float,
        poll_seconds: float,
    ) -> None:
        self.backend, self.config, self.cache, self.labels = backend, config, cache, labels
        self.batch_size = int(batch_size)
        self.lease, self.poll = float(lease_seconds), float(poll_seconds)
        self.workers = max(1, int(getattr(backend, "concurrency", 1) or 1) // self.batch_size)
        self.owner = _new_owner()
        self.pending: deque[str] = deque()
        self.waiting: list[str] = []
        self.keys: dict[str, str] = {}
        self.answers: dict[str, str] = {}
        self.advance: Callable[[int], Any] = lambda n: None
        self.asked = 0

    def run(self, todo: Sequence[str], answers: dict[str, str], advance: Callable[[int], Any]) -> int:
        """Put an answer for every prompt of ``todo`` into ``answers``; returns how many this call asked."""
        if not todo:
            return 0
        self.pending, self.answers, self.advance = deque(todo), answers, advance
        cache = self.cache
        if cache is not None:
            self.keys = {p: cache_key(self.backend.model_id, p, self.config) for p in todo}
        heartbeat = _Heartbeat(cache, self.owner, self.lease) if cache is not None else None
        pool = (
            ThreadPoolExecutor(self.workers, thread_name_prefix="llm-batch") if self.workers > 1 else _InlineExecutor()
        )
        try:
            self._loop(pool)
        finally:
            pool.shutdown(wait=True)  # after a failure the batches still running finish and commit
            if cache is not None and heartbeat is not None:
                heartbeat.stop()
                cache.release(self.owner)
        return self.asked

    def _loop(self, pool: ThreadPoolExecutor | _InlineExecutor) -> None:
        running: dict[Future, list[str]] = {}
        try:
            while True:
                while len(running) < self.workers and (chunk := self._next_chunk()):
                    running[pool.submit(self._ask, chunk)] = chunk
                if running:
                    self._collect(running)
                elif self.waiting:
                    self._wait_for_others()
                else:
                    return
        except BaseException:
            for future in running:
                future.cancel()
            raise

    def _collect(self, running: dict[Future, list[str]]) -> None:
        """Wait for at least one batch in flight to finish and take in its answers."""
        done, _ = wait(list(running), return_when=FIRST_COMPLETED)
        for future in done:
            chunk = running.pop(future)
            self.answers.update(zip(chunk, future.result(), strict=True))
            self.asked += len(chunk)
            self.advance(len(chunk))

    def _next_chunk(self) -> list[str]:
        """The next batch to ask (claimed first when there is a cache); [] when nothing is left to claim."""
        if self.cache is None:
            return [self.pending.popleft() for _ in range(min(self.batch_size, len(self.pending)))]
        while self.pending:
            window = [self.pending.popleft() for _ in range(min(4 * self.batch_size, len(self.pending)))]
            got = self.cache.claim([self.keys[p] for p in window], self.owner, self.lease, limit=self.batch_size)
            claimed = self._sort_window(window, got)
            if claimed:
                return claimed
        return []

    def _sort_window(self, window: list[str], got: ClaimResult) -> list[str]:
        """Take in answers other builds committed, set aside prompts they hold, put back the free
        prompts beyond the batch; returns the claimed prompts in order."""
        claimed, busy = set(got.claimed), set(got.busy)
        done = [p for p in window if self.keys[p] in got.answered]
        self.answers.update((p, got.answered[self.keys[p]]) for p in done)
        self.advance(len(done))
        self.waiting.extend(p for p in window if self.keys[p] in busy)
        seen = claimed | busy | got.answered.keys()
        self.pending.extendleft(reversed([p for p in window if self.keys[p] not in seen]))
        return [p for p in window if self.keys[p] in claimed]

    def _wait_for_others(self) -> None:
        """Sleep one poll interval, then look again at the prompts other builds hold."""
        logger.debug(
            "waiting for %d prompts claimed by another build sharing %s",
            len(self.waiting),
            getattr(self.cache, "path", "the cache"),
        )
        time.sleep(self.poll)
        self.pending.extend(self.waiting)
        self.waiting = []

    def _ask(self, chunk: list[str]) -> list[str]:
        """Ask one batch and commit its answers (in a worker thread when batches run side by side)."""
        if self.labels is None:
            got = self.backend.generate(chunk, self.config)
        else:
            got = self.backend.generate_labelled(chunk, self.config, [self.labels[p] for p in chunk])
        if len(got) != len(chunk):
            raise LLMError(f"{type(self.backend).__name__} returned {len(got)} answers for {len(chunk)} prompts")
        if self.cache is not None:
            self.cache.put_many(self.backend.model_id, zip(chunk, got, strict=True), self.config)
        return list(got)


def _cached_answers(
    model_id: str, unique: Sequence[str], config: GenerationConfig, cache: AnswerCache | None
) -> dict[str, str]:
    """Answers already in ``cache`` for the distinct prompts ``unique``."""
    if cache is None:
        return {}
    keys = [cache_key(model_id, p, config) for p in unique]
    hits = cache.get_many(keys)
    return {p: hits[k] for p, k in zip(unique, keys, strict=True) if k in hits}


def _first_labels(prompts: Sequence[str], labels: Sequence[str] | None) -> dict[str, str] | None:
    """Each distinct prompt's label: that of its first occurrence."""
    if labels is None:
        return None
    labels = [str(x) for x in labels]
    if len(labels) != len(prompts):
        raise ValueError(f"{len(labels)} labels for {len(prompts)} prompts")
    first: dict[str, str] = {}
    for prompt, label in zip(prompts, labels, strict=True):
        first.setdefault(prompt, label)
    return first


def answer_prompts(
    backend: LLMBackend,
    prompts: Sequence[str],
    config: GenerationConfig | None = None,
    cache: AnswerCache | None = None,
    batch_size: int = 16,
    progress: bool = True,
    desc: str = "LLM",
    *,
    labels: Sequence[str] | None = None,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
    poll_seconds: float = DEFAULT_POLL_SECONDS,
) -> AnswerResult:
    """Answer every prompt, asking the backend only for distinct prompts with no cached answer.

    Identical prompts are asked once. Uncached prompts go to ``backend.generate`` in chunks of
    ``batch_size``, and each chunk's answers are committed to ``cache`` as soon as it is answered.
    A backend whose ``concurrency`` exceeds ``batch_size`` (an HTTP server) gets
    ``concurrency // batch_size`` chunks at once, so the commit unit stays ``batch_size``. The order is
    first-seen (sorting by length inside a chunk is the backend's job), or sorted by text when
    ``backend.reuses_prompt_prefix`` is true, so that a backend that keeps the previous prompt's
    key/value cache re-reads only what follows the shared opening. Answers are returned in input order
    either way.

    With a cache, each chunk is claimed before it is asked (see :meth:`AnswerCache.claim`): prompts
    that another build sharing the cache holds are not asked but read once that build commits them,
    or taken over when its claims expire (``lease_seconds`` after it stopped renewing them); the
    cache is looked at every ``poll_seconds`` meanwhile.

    Args:
        labels: one human-readable name per prompt (e.g. session id and perspective) that the
            backend's errors and retry warnings use instead of the prompt's position in its batch.
    """
    config = config or GenerationConfig()
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    prompts = [str(p) for p in prompts]
    first_labels = _first_labels(prompts, labels)
    unique = list(dict.fromkeys(prompts))
    answers = _cached_answers(backend.model_id, unique, config, cache)
    todo = [p for p in unique if p not in answers]
    if getattr(backend, "reuses_prompt_prefix", False):
        todo.sort()
    counts = (len(prompts), len(unique), len(answers), len(todo))
    logger.info("%s: %d prompts, %d distinct, %d cached, %d to ask (%s)", desc, *counts, backend.model_id)
    loop = _AskLoop(backend, config, cache, int(batch_size), first_labels, lease_seconds, poll_seconds)
    show = bars_enabled(progress) and bool(todo)
    bar = tqdm(total=len(todo), desc=desc, unit="prompt", dynamic_ncols=True) if show else None
    try:
        asked = loop.run(todo, answers, bar.update if bar is not None else (lambda n: None))
    finally:
        if bar is not None:
            bar.close()
    if asked < len(todo):
        logger.info("%s: %d prompts were answered by another build sharing the cache", desc, len(todo) - asked)
    return AnswerResult(answers=[answers[p] for p in prompts], asked=asked, cached=len(unique) - asked)
