"""Answer cache (sqlite) and the resumable answer loop, including a SIGKILL mid-run."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from llm4sbr_adapter.offline.llm.base import GenerationConfig, LLMBackend
from llm4sbr_adapter.offline.llm.cache import AnswerCache, AnswerResult, answer_prompts, cache_key


class CountingBackend(LLMBackend):
    """Deterministic fake: answers ``<model>|<prompt>`` and records every call."""

    def __init__(self, model_id: str = "fake-model"):
        self.model_id = model_id
        self.calls: list[list[str]] = []

    def generate(self, prompts, config):
        self.calls.append(list(prompts))
        return [f"{self.model_id}|{p}|{config.max_new_tokens}" for p in prompts]

    @property
    def asked(self) -> list[str]:
        return [p for call in self.calls for p in call]


def test_cache_key_depends_on_model_prompt_and_config():
    cfg = GenerationConfig(max_new_tokens=8)
    k = cache_key("m", "p", cfg)
    assert len(k) == 64 and k == cache_key("m", "p", GenerationConfig(max_new_tokens=8))
    assert k != cache_key("m2", "p", cfg)
    assert k != cache_key("m", "p2", cfg)
    assert k != cache_key("m", "p", GenerationConfig(max_new_tokens=9))
    assert k != cache_key("m", "p", GenerationConfig(max_new_tokens=8, stop=("\n",)))
    assert cache_key("ab", "c", cfg) != cache_key("a", "bc", cfg)  # fields cannot run into each other


def test_dedup_cached_counts_and_second_run_makes_no_calls(tmp_path):
    cfg = GenerationConfig(max_new_tokens=4)
    prompts = ["a", "b", "a", "c", "b", "d", "e"]
    backend = CountingBackend()
    with AnswerCache(tmp_path / "answers.sqlite") as cache:
        first = answer_prompts(backend, prompts, cfg, cache, batch_size=2, progress=False)
        assert isinstance(first, AnswerResult)
        assert first.answers == [f"fake-model|{p}|4" for p in prompts]
        assert (first.asked, first.cached) == (5, 0)
        assert sorted(backend.asked) == ["a", "b", "c", "d", "e"]  # each distinct prompt once
        assert [len(c) for c in backend.calls] == [2, 2, 1]
        assert len(cache) == 5

    backend2 = CountingBackend()
    with AnswerCache(tmp_path / "answers.sqlite") as cache:  # reopened from disk
        second = answer_prompts(backend2, prompts, cfg, cache, batch_size=2, progress=False)
        assert backend2.calls == []
        assert (second.asked, second.cached) == (0, 5)
        assert second.answers == first.answers

        # a partly new request asks only for the new prompts
        third = answer_prompts(backend2, ["a", "z", "z"], cfg, cache, progress=False)
        assert backend2.asked == ["z"] and (third.asked, third.cached) == (1, 1)

        # another model or another config does not reuse the answers
        other = CountingBackend("other-model")
        assert answer_prompts(other, ["a"], cfg, cache, progress=False).asked == 1
        assert answer_prompts(backend2, ["a"], GenerationConfig(max_new_tokens=5), cache, progress=False).asked == 1


def test_without_cache_still_dedups(tmp_path):
    backend = CountingBackend()
    res = answer_prompts(backend, ["x", "x", "y"], GenerationConfig(), None, progress=True)
    assert res.answers[0] == res.answers[1] and backend.asked == ["x", "y"]
    assert (res.asked, res.cached) == (2, 0)
    assert answer_prompts(backend, [], GenerationConfig(), None).answers == []


def test_cache_rows_hold_the_documented_columns(tmp_path):
    path = tmp_path / "c.sqlite"
    cfg = GenerationConfig(max_new_tokens=3, stop=("\n",))
    with AnswerCache(path) as cache:
        cache.put("mid", "the prompt", cfg, "the answer")
        assert cache.get("mid", "the prompt", cfg) == "the answer"
        assert cache.get("mid", "other", cfg) is None
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    row = con.execute("SELECT key, model_id, prompt, config, answer, created_at FROM answers").fetchone()
    con.close()
    assert row[0] == cache_key("mid", "the prompt", cfg)
    assert row[1:5] == ("mid", "the prompt", '{"max_new_tokens":3,"stop":["\\n"],"temperature":0.0}', "the answer")
    assert row[5] > 0


def test_backend_returning_wrong_count_is_an_error(tmp_path):
    class Broken(CountingBackend):
        def generate(self, prompts, config):
            return ["only one"]

    with pytest.raises(RuntimeError, match="returned 1 answers for 2 prompts"):
        answer_prompts(Broken(), ["a", "b"], GenerationConfig(), None, progress=False)


def test_failed_batch_keeps_earlier_batches(tmp_path):
    class FailsOnThird(CountingBackend):
        def generate(self, prompts, config):
            if len(self.calls) == 2:
                raise ConnectionError("server went away")
            return super().generate(prompts, config)

    cfg = GenerationConfig()
    prompts = [f"p{i}" for i in range(10)]
    with AnswerCache(tmp_path / "c.sqlite") as cache:
        with pytest.raises(ConnectionError):
            answer_prompts(FailsOnThird(), prompts, cfg, cache, batch_size=3, progress=False)
        assert len(cache) == 6
        again = CountingBackend()
        res = answer_prompts(again, prompts, cfg, cache, batch_size=3, progress=False)
        assert sorted(again.asked) == sorted(prompts[6:]) and (res.asked, res.cached) == (4, 6)


_WORKER = textwrap.dedent("""
    import sys, time
    from llm4sbr_adapter.offline.llm.base import GenerationConfig, LLMBackend
    from llm4sbr_adapter.offline.llm.cache import AnswerCache, answer_prompts

    class Slow(LLMBackend):
        model_id = "slow-fake"
        def generate(self, prompts, config):
            time.sleep(0.15)
            return ["ans:" + p for p in prompts]

    cache = AnswerCache(sys.argv[1])
    prompts = ["prompt %d" % i for i in range(int(sys.argv[2]))]
    print("ready", flush=True)
    answer_prompts(Slow(), prompts, GenerationConfig(), cache, batch_size=2, progress=False)
    print("finished", flush=True)
""")


def _rows(path: Path) -> set[str]:
    con = sqlite3.connect(path, timeout=30)
    try:
        return {p for (p,) in con.execute("SELECT prompt FROM answers")}
    except sqlite3.OperationalError:  # table not created yet
        return set()
    finally:
        con.close()


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_mid_run_loses_at_most_one_batch(tmp_path):
    n = 40
    db = tmp_path / "answers.sqlite"
    script = tmp_path / "worker.py"
    script.write_text(_WORKER)
    proc = subprocess.Popen([sys.executable, str(script), str(db), str(n)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 60
        while len(_rows(db)) < 6:
            assert proc.poll() is None, "worker ended before it could be killed"
            assert time.monotonic() < deadline, "worker made no progress"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL

    done = _rows(db)
    assert 6 <= len(done) < n, "the kill did not land mid-run"
    assert len(done) % 2 == 0, "a batch was half-written"

    prompts = [f"prompt {i}" for i in range(n)]
    backend = CountingBackend("slow-fake")
    backend.generate = lambda ps, cfg: backend.calls.append(list(ps)) or ["ans:" + p for p in ps]
    with AnswerCache(db) as cache:
        res = answer_prompts(backend, prompts, GenerationConfig(), cache, batch_size=2, progress=False)
    asked = set(backend.asked)
    assert not (asked & done), "a prompt finished before the kill was asked again"
    assert asked | done == set(prompts)
    assert (res.asked, res.cached) == (n - len(done), len(done))
    assert res.answers == ["ans:" + p for p in prompts]


def test_prefix_reusing_backend_is_asked_in_sorted_order_and_answers_keep_input_order():
    prompts = ["1. b\n2. c", "1. a", "1. b", "1. a\n2. d", "1. b"]

    plain = CountingBackend()
    res = answer_prompts(plain, prompts, GenerationConfig(), None, batch_size=2, progress=False)
    assert plain.asked == ["1. b\n2. c", "1. a", "1. b", "1. a\n2. d"]  # first-seen

    class PrefixReusing(CountingBackend):
        reuses_prompt_prefix = True

    reusing = PrefixReusing()
    res2 = answer_prompts(reusing, prompts, GenerationConfig(), None, batch_size=2, progress=False)
    # sorted: a session's shorter prefix sits just before the longer one that extends it
    assert reusing.asked == ["1. a", "1. a\n2. d", "1. b", "1. b\n2. c"]
    assert res2.answers == res.answers == [f"fake-model|{p}|32" for p in prompts]


def test_default_perspectives_of_a_row_are_asked_back_to_back_and_rows_in_prefix_order():
    from llm4sbr_adapter.offline.prompts import DEFAULT_PERSPECTIVES, render_prompt

    users = {"u1": ["Soap_1", "Brush_2", "Comb_3", "Gel_4"], "u2": ["Wax_5", "Oil_6", "Soap_1"]}
    # prefix augmentation: one row per prefix of a user's history, rows of the two users interleaved
    rows = [(u, k) for k in range(1, 5) for u in users if k <= len(users[u])]
    prompts, names = [], []
    for u, k in rows:
        for p in DEFAULT_PERSPECTIVES:
            prompts.append(render_prompt(p, users[u][:k]))
            names.append((u, k, p.name))

    class PrefixReusing(CountingBackend):
        reuses_prompt_prefix = True

    backend = PrefixReusing()
    answer_prompts(backend, prompts, GenerationConfig(), None, batch_size=3, progress=False)
    asked = [names[prompts.index(p)] for p in backend.asked]
    for j in range(0, len(asked), 2):  # each row's two perspectives one after the other
        assert asked[j][:2] == asked[j + 1][:2] and {asked[j][2], asked[j + 1][2]} == {"long", "short"}
    row_order = [a[:2] for a in asked[::2]]
    for u in users:  # a user's rows are neighbours, each next to the row whose listing it extends
        ks = [k for v, k in row_order if v == u]
        start = row_order.index((u, ks[0]))
        assert row_order[start : start + len(ks)] == [(u, k) for k in ks]
        assert sorted(ks) == list(range(1, len(users[u]) + 1)) and ks in (sorted(ks), sorted(ks)[::-1])


# ------------------------------------------------------------------------------------ claims (issue 15)


class SharedCounter(LLMBackend):
    """Slow fake whose every instance records into one list (two builds, one LLM bill)."""

    model_id = "shared-fake"

    def __init__(self, calls: list[str], lock) -> None:
        self.calls, self.lock = calls, lock

    def generate(self, prompts, config):
        time.sleep(0.02)
        with self.lock:
            self.calls.extend(prompts)
        return ["ans:" + p for p in prompts]


def test_two_builds_sharing_a_cache_ask_each_prompt_once(tmp_path):
    import threading

    db = tmp_path / "shared.sqlite"
    prompts = [f"prompt {i}" for i in range(48)] * 2  # duplicates too
    calls: list[str] = []
    lock = threading.Lock()
    opening, answering = threading.Barrier(2), threading.Barrier(2)
    results: list[AnswerResult | None] = [None, None]
    errors: list[BaseException] = []

    def build(slot: int) -> None:
        try:
            opening.wait(timeout=30)
            with AnswerCache(db) as cache:  # both create the new file at once
                answering.wait(timeout=30)
                results[slot] = answer_prompts(
                    SharedCounter(calls, lock), prompts, GenerationConfig(), cache, batch_size=4, progress=False
                )
        except BaseException as err:  # surfaced below
            errors.append(err)

    threads = [threading.Thread(target=build, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    distinct = sorted(set(prompts))
    assert sorted(calls) == distinct, f"{len(calls)} LLM calls for {len(distinct)} distinct prompts"
    for res in results:
        assert res is not None and res.answers == ["ans:" + p for p in prompts]
        assert res.asked + res.cached == len(distinct)
    assert results[0].asked + results[1].asked == len(distinct)
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT COUNT(*) FROM claims").fetchone()[0] == 0  # nothing left claimed


def test_a_dead_builds_claims_expire_and_are_taken_over(tmp_path):
    cfg = GenerationConfig()
    prompts = [f"p{i}" for i in range(6)]
    with AnswerCache(tmp_path / "c.sqlite") as cache:
        keys = [cache_key("fake-model", p, cfg) for p in prompts[:3]]
        # a build that claimed three prompts and was then killed (its lease is never renewed)
        assert cache.claim(keys, owner="killed-build", lease_seconds=0.5).claimed == keys
        assert cache.claim(keys, owner="someone-else", lease_seconds=60).busy == keys
        backend = CountingBackend()
        t0 = time.monotonic()
        res = answer_prompts(backend, prompts, cfg, cache, batch_size=2, progress=False, poll_seconds=0.05)
        waited = time.monotonic() - t0
    assert sorted(backend.asked) == prompts and res.asked == 6
    assert res.answers == [f"fake-model|{p}|32" for p in prompts]
    assert waited >= 0.4, "the live lease was not respected"


def test_a_build_reads_answers_that_another_build_commits_while_it_waits(tmp_path):
    cfg = GenerationConfig()
    prompts = ["a", "b", "c", "d"]
    with AnswerCache(tmp_path / "c.sqlite") as cache, AnswerCache(tmp_path / "c.sqlite") as other:
        keys = [cache_key("fake-model", p, cfg) for p in prompts[:2]]
        assert other.claim(keys, owner="other-build", lease_seconds=60).claimed == keys

        import threading

        def finish_other() -> None:
            time.sleep(0.3)
            other.put_many("fake-model", [("a", "from other"), ("b", "from other too")], cfg)

        t = threading.Thread(target=finish_other)
        t.start()
        backend = CountingBackend()
        res = answer_prompts(backend, prompts, cfg, cache, batch_size=2, progress=False, poll_seconds=0.05)
        t.join()
    assert backend.asked == ["c", "d"]
    assert res.answers[:2] == ["from other", "from other too"] and (res.asked, res.cached) == (2, 2)


@pytest.mark.skipif(sys.platform == "win32", reason="process liveness is checked on POSIX only")
def test_claims_of_a_killed_build_on_this_machine_are_void_at_once(tmp_path):
    import socket

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    cfg = GenerationConfig()
    with AnswerCache(tmp_path / "c.sqlite") as cache:
        keys = [cache_key("fake-model", p, cfg) for p in ("a", "b")]
        cache.claim(keys, owner=f"{socket.gethostname()}:{dead.pid}:0123abcd", lease_seconds=3600)
        backend = CountingBackend()
        t0 = time.monotonic()
        res = answer_prompts(backend, ["a", "b", "c"], cfg, cache, batch_size=2, progress=False, poll_seconds=5)
    assert sorted(backend.asked) == ["a", "b", "c"] and res.asked == 3
    assert time.monotonic() - t0 < 4, "waited for the claims of a process that no longer exists"


def test_builds_creating_the_same_new_cache_at_once_both_open_it(tmp_path):
    import threading

    errors: list[BaseException] = []

    def open_close(path: Path, start: threading.Barrier) -> None:
        start.wait(timeout=30)
        try:
            AnswerCache(path).close()
        except BaseException as err:  # surfaced below
            errors.append(err)

    for trial in range(40):  # "database is locked" while the other connection switches the file to WAL
        start = threading.Barrier(2)
        threads = [threading.Thread(target=open_close, args=(tmp_path / f"c{trial}.sqlite", start)) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    assert not errors, errors[:3]
