"""Fault drill: SIGKILL a store build at random moments, resume it, and check nothing was lost or doubled.

Against a local fake OpenAI-compatible server (an ``http.server`` thread on 127.0.0.1 that answers
every prompt with a catalogue title chosen from the prompt's hash and counts the requests), the drill

1. builds the store once without interruption (the reference; its own answer cache), then once more
   from that complete cache (a resumed build's length without LLM work: the kill window);
2. starts the same build in another folder as a subprocess
   (``python -m llm4sbr_adapter.build_store ... --llm openai:http://127.0.0.1:PORT/v1#fake``), kills
   its process group with SIGKILL after a seeded random delay in ``[0, kill window)``, starts it again
   with the same answer cache, and so on until ``--kills`` kills are done; a run that finishes before
   its kill simply rebuilds the store on the next start (that rewrite is a target too). Then one last
   run goes to the end;
3. reports: kills done; prompts asked more than once (a kill may lose the one batch in flight, so at
   most ``--batch-size`` per kill, and at most that many re-asked by any single restart); whether the
   final store is byte-identical to the reference, else whether every tensor and every metadata field
   but ``created_at`` is; and the temporary files left in the build folders (should be 0).

Inputs are synthetic and small (``--sessions`` sessions over ``--items`` titled items, written to a
temporary folder), the text encoder is the builder's default all-MiniLM-L6-v2 (``--threads`` CPU
threads), so the whole drill takes a few minutes on two busy cores.

Example::

    python benchmarks/fault_drill.py --kills 20 --seed 0

Exit status 0 when every check passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]

_WORDS_A = [
    "red",
    "blue",
    "quiet",
    "rapid",
    "golden",
    "tiny",
    "vintage",
    "electric",
    "wooden",
    "silver",
    "bright",
    "soft",
]
_WORDS_B = [
    "lamp",
    "kettle",
    "guitar",
    "novel",
    "sneaker",
    "backpack",
    "camera",
    "teapot",
    "scarf",
    "drone",
    "candle",
    "clock",
]


# --------------------------------------------------------------------------- fake server
class FakeChatServer:
    """OpenAI-style ``/v1/chat/completions`` on 127.0.0.1 that counts requests per prompt and phase.

    Each answer is a catalogue title picked by the prompt's sha256, so it is the same on every
    attempt. ``phase`` (set by the drill) tags the requests that arrive while it holds.
    """

    def __init__(self, titles: list[str], delay: float) -> None:
        self.titles, self.delay = list(titles), float(delay)
        self.lock = threading.Lock()
        self.phase = "idle"
        self.requests: list[tuple[str, str]] = []  # (phase, prompt), in arrival order
        parent = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                try:
                    body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                    prompt = body["messages"][0]["content"]
                    with parent.lock:
                        parent.requests.append((parent.phase, prompt))
                    time.sleep(parent.delay)
                    data = json.dumps(
                        {"choices": [{"index": 0, "message": {"role": "assistant", "content": parent.answer(prompt)}}]}
                    ).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client was killed mid-request
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda request, client_address: None  # a killed client is no error here
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="fake-chat-server", daemon=True)
        self.thread.start()

    def answer(self, prompt: str) -> str:
        k = int.from_bytes(hashlib.sha256(prompt.encode("utf-8")).digest()[:8], "little")
        return self.titles[k % len(self.titles)]

    def prompts(self, phase_prefix: str) -> list[str]:
        """Prompts of every request whose phase starts with ``phase_prefix``, in arrival order."""
        with self.lock:
            return [p for ph, p in self.requests if ph.startswith(phase_prefix)]

    def by_phase(self, phase_prefix: str) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        with self.lock:
            for ph, p in self.requests:
                if ph.startswith(phase_prefix):
                    out.setdefault(ph, []).append(p)
        return out

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# --------------------------------------------------------------------------- inputs
def write_inputs(folder: Path, sessions: int, items: int, seed: int) -> tuple[Path, Path, list[str]]:
    """Synthetic ``sessions.tsv`` (``session_id<TAB>item ids``) and ``items.tsv`` (``item_id<TAB>title``)."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    pairs = [f"{a} {b}" for a in _WORDS_A for b in _WORDS_B]
    rng.shuffle(pairs)
    titles = [f"{pairs[i % len(pairs)]} {i // len(pairs) + 1}".strip() for i in range(items)]
    items_path = folder / "items.tsv"
    items_path.write_text(
        "item_id\ttitle\n" + "".join(f"{i + 1}\t{t}\n" for i, t in enumerate(titles)), encoding="utf-8"
    )
    rows = []
    for s in range(sessions):
        seq = [rng.randint(1, items) for _ in range(rng.randint(2, 7))]
        rows.append(f"s{s:04d}\t{' '.join(map(str, seq))}\n")
    sessions_path = folder / "sessions.tsv"
    sessions_path.write_text("session_id\titems\n" + "".join(rows), encoding="utf-8")
    return sessions_path, items_path, titles


# --------------------------------------------------------------------------- one build
@dataclass
class BuildSpec:
    sessions: Path
    items: Path
    llm: str
    batch_size: int
    threads: int

    def command(self, folder: Path, output_name: str = "intents.safetensors") -> list[str]:
        return [
            sys.executable,
            "-m",
            "llm4sbr_adapter.build_store",
            "--sessions",
            str(self.sessions),
            "--items",
            str(self.items),
            "--output",
            str(folder / output_name),
            "--cache",
            str(folder / "answers.sqlite3"),
            "--item-cache-dir",
            str(folder / "item_cache"),
            "--llm",
            self.llm,
            "--batch-size",
            str(self.batch_size),
            "--threads",
            str(self.threads),
            "--no-progress",
            "--log-level",
            "INFO",
        ]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env.pop("OPENAI_API_KEY", None)  # the fake server needs none; never send a real one to it
    return env


def start_build(cmd: list[str], log: Path) -> subprocess.Popen:
    """Start a build in its own process group (so one SIGKILL takes all of it), output to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as handle:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            cmd, stdout=handle, stderr=subprocess.STDOUT, env=_env(), cwd=str(REPO_ROOT), start_new_session=True
        )


def run_build(cmd: list[str], log: Path, timeout: float) -> float:
    """Run a build to the end; returns its seconds (raises with the log's tail when it fails)."""
    t0 = time.perf_counter()
    proc = start_build(cmd, log)
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise RuntimeError(f"build did not finish within {timeout:.0f} s; log: {log}") from None
    if rc != 0:
        tail = log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"build failed with status {rc}; log {log}:\n{tail}")
    return time.perf_counter() - t0


# --------------------------------------------------------------------------- comparison
def _safetensors_parts(path: Path) -> tuple[dict[str, Any], dict[str, bytes]]:
    """``(metadata of the store, {tensor name: dtype/shape/bytes})`` read straight from the file."""
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    meta = json.loads(header.pop("__metadata__", {}).get("llm4sbr", "{}"))
    data = raw[8 + n :]
    tensors = {
        name: (info["dtype"], tuple(info["shape"]), data[info["data_offsets"][0] : info["data_offsets"][1]])
        for name, info in header.items()
    }
    return meta, tensors


_CREATED_AT = re.compile(rb'(created_at\\?"\s*:\s*\\?")[^"\\]*')


def compare_stores(a: Path, b: Path) -> dict[str, Any]:
    """Byte equality (as written, and with the ``created_at`` timestamp blanked in both), tensor
    equality and the metadata fields that differ."""
    meta_a, ten_a = _safetensors_parts(a)
    meta_b, ten_b = _safetensors_parts(b)
    differing_tensors = sorted(k for k in set(ten_a) | set(ten_b) if ten_a.get(k) != ten_b.get(k))
    differing_meta = sorted(k for k in set(meta_a) | set(meta_b) if meta_a.get(k) != meta_b.get(k))
    raw_a, raw_b = a.read_bytes(), b.read_bytes()
    return {
        "byte_identical": raw_a == raw_b,
        "byte_identical_but_created_at": _CREATED_AT.sub(rb"\1", raw_a, count=1)
        == _CREATED_AT.sub(rb"\1", raw_b, count=1),
        "tensor_identical": not differing_tensors,
        "tensors": len(ten_a),
        "differing_tensors": differing_tensors,
        "differing_metadata": differing_meta,
    }


_TEMP = re.compile(r"\.tmp$")
_SQLITE_SIDE = re.compile(r"-(journal|wal|shm)$")


_STAGE = re.compile(r"stage (\w+) \.\.\.")


def stage_at_kill(log: Path) -> str:
    """The last builder stage a killed build's log had entered (``startup`` before the first)."""
    stages = _STAGE.findall(log.read_text(errors="replace")) if log.is_file() else []
    return stages[-1] if stages else "startup"


def leftover_temp_files(folder: Path, sqlite: bool = True) -> list[str]:
    """Temporary files under ``folder``: atomic writes' ``.<name>.XXXXXXXX.tmp`` and, with ``sqlite``, the
    answer cache's journal / WAL files (a killed build leaves those by design; a finished one must not)."""
    return sorted(
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.is_file() and (_TEMP.search(p.name) or (sqlite and _SQLITE_SIDE.search(p.name)))
    )


# --------------------------------------------------------------------------- the drill
@dataclass
class DrillResult:
    kills: int = 0
    attempts: int = 0
    finished_before_kill: int = 0
    kill_delays: list[float] = field(default_factory=list)
    kill_stages: list[str] = field(default_factory=list)
    temp_files_after_kills: list[str] = field(default_factory=list)  # seen right after a kill, before the restart
    distinct_prompts: int = 0
    reference_requests: int = 0
    drill_requests: int = 0
    prompts_asked_more_than_once: int = 0
    extra_requests: int = 0
    most_reasked_by_one_restart: int = 0
    batch_size: int = 0
    missing_prompts: int = 0
    comparison: dict[str, Any] = field(default_factory=dict)
    rebuild_comparison: dict[str, Any] = field(default_factory=dict)
    temp_files: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Every check of the drill passes."""
        return (
            self.kills > 0
            and self.missing_prompts == 0
            and self.extra_requests <= self.kills * self.batch_size
            and self.most_reasked_by_one_restart <= self.batch_size
            and self.comparison.get("tensor_identical", False)
            and self.comparison.get("byte_identical_but_created_at", False)
            and self.rebuild_comparison.get("tensor_identical", False)
            and set(self.comparison.get("differing_metadata", [])) <= {"created_at"}
            and not self.temp_files
        )

    def report(self) -> str:
        c, r = self.comparison, self.rebuild_comparison
        delays = sorted(self.kill_delays) or [0.0]

        def yes(flag: Any) -> str:
            return "yes" if flag else "no"

        rows = [
            (
                "kills done",
                (
                    f"{self.kills} (attempts {self.attempts}, {self.finished_before_kill} finished before "
                    "their kill and were started again)"
                ),
            ),
            ("kill delays (s)", f"min {delays[0]:.2f}, median {delays[len(delays) // 2]:.2f}, max {delays[-1]:.2f}"),
            ("stage at each kill", ", ".join(f"{k} {v}" for k, v in Counter(self.kill_stages).most_common())),
            (
                "distinct prompts",
                (f"{self.distinct_prompts} (the reference build sent {self.reference_requests} requests)"),
            ),
            ("requests during the drill", f"{self.drill_requests}"),
            (
                "prompts asked more than once",
                (
                    f"{self.prompts_asked_more_than_once} ({self.extra_requests} extra "
                    f"requests; bound: kills x batch = {self.kills} x {self.batch_size} "
                    f"= {self.kills * self.batch_size})"
                ),
            ),
            (
                "most re-asked by one restart",
                (f"{self.most_reasked_by_one_restart} (bound: one batch = {self.batch_size})"),
            ),
            ("prompts never asked", f"{self.missing_prompts}"),
            (
                "final store byte-identical",
                (
                    f"{yes(c.get('byte_identical'))}; with the created_at timestamp blanked "
                    f"in both: {yes(c.get('byte_identical_but_created_at'))}"
                ),
            ),
            (
                "final store tensor-identical",
                (
                    f"{yes(c.get('tensor_identical'))} ({c.get('tensors', 0)} tensors; "
                    f"differing: {c.get('differing_tensors') or 'none'})"
                ),
            ),
            ("metadata fields that differ", ", ".join(c.get("differing_metadata", [])) or "none"),
            (
                "rebuild from full cache",
                (
                    f"tensors identical {yes(r.get('tensor_identical'))}, metadata differing: "
                    f"{', '.join(r.get('differing_metadata', [])) or 'none'}"
                ),
            ),
            (
                "temp files left by the kills",
                (
                    f"{len(self.temp_files_after_kills)} (atomic-write temps seen right "
                    f"after a kill) {sorted(set(self.temp_files_after_kills)) or ''}"
                ),
            ),
            ("temp files left at the end", f"{len(self.temp_files)} {self.temp_files or ''}"),
            ("seconds", ", ".join(f"{k} {v:.1f}" for k, v in self.seconds.items())),
            ("verdict", "PASS" if self.ok else "FAIL"),
        ]
        return "\n".join(f"{label + ':':<31} {value}".rstrip() for label, value in rows)


def run_drill(
    workdir: Path,
    *,
    kills: int = 20,
    seed: int = 0,
    sessions: int = 40,
    items: int = 60,
    batch_size: int = 10,
    server_delay: float = 0.8,
    threads: int = 1,
    build_timeout: float = 300.0,
    log=print,
) -> DrillResult:
    """Run the drill in ``workdir`` (created; left in place for inspection) and return its figures.

    ``batch_size`` must exceed half the HTTP backend's 16 connections, so that exactly one batch is
    in flight at a time (the backend runs ``16 // batch_size`` batches side by side).
    """
    if batch_size < 9:
        raise ValueError("batch_size must be >= 9: with 16 connections a smaller batch has several in flight")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    res = DrillResult(batch_size=batch_size)
    sessions_path, items_path, titles = write_inputs(workdir / "inputs", sessions, items, seed)
    server = FakeChatServer(titles, server_delay)
    proc: subprocess.Popen | None = None
    try:
        spec = BuildSpec(sessions_path, items_path, f"openai:{server.url}/v1#fake", batch_size, threads)
        ref_dir, drill_dir, logs = workdir / "reference", workdir / "drill", workdir / "logs"

        server.phase = "reference"
        res.seconds["reference"] = run_build(spec.command(ref_dir), logs / "reference.log", build_timeout)
        server.phase = "rebuild"
        res.seconds["rebuild_from_cache"] = run_build(
            spec.command(ref_dir, "rebuilt.safetensors"), logs / "rebuild.log", build_timeout
        )
        res.rebuild_comparison = compare_stores(ref_dir / "intents.safetensors", ref_dir / "rebuilt.safetensors")
        reference_prompts = server.prompts("reference")
        res.reference_requests = len(reference_prompts)
        res.distinct_prompts = len(set(reference_prompts))
        window = res.seconds["rebuild_from_cache"]  # every start takes at least about this long
        log(
            f"reference build {res.seconds['reference']:.1f} s ({res.reference_requests} requests), "
            f"rebuild from cache {window:.1f} s: kills drawn in [0, {window:.1f}) s"
        )

        t0 = time.perf_counter()
        attempt = 0
        while True:
            attempt += 1
            server.phase = f"drill:{attempt:04d}"
            if res.kills >= kills:  # the final build runs to the end
                run_build(spec.command(drill_dir), logs / f"drill_{attempt:04d}.log", build_timeout)
                break
            proc = start_build(spec.command(drill_dir), logs / f"drill_{attempt:04d}.log")
            delay = rng.uniform(0.0, window)
            try:
                rc = proc.wait(timeout=delay)
                if rc != 0:
                    raise RuntimeError(f"attempt {attempt} failed with status {rc}; see {logs}/drill_{attempt:04d}.log")
                res.finished_before_kill += 1
                log(f"attempt {attempt}: finished before its kill at {delay:.2f} s")
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                if proc.wait() == 0:  # it ended between the timeout and the signal
                    res.finished_before_kill += 1
                    continue
                res.kills += 1
                res.kill_delays.append(delay)
                res.kill_stages.append(stage_at_kill(logs / f"drill_{attempt:04d}.log"))
                res.temp_files_after_kills += [
                    f for f in leftover_temp_files(drill_dir, sqlite=False) if f not in res.temp_files_after_kills
                ]
                log(
                    f"attempt {attempt}: killed at {delay:.2f} s in stage {res.kill_stages[-1]} "
                    f"({len(server.prompts(f'drill:{attempt:04d}'))} requests this attempt)"
                )
        res.attempts = attempt
        res.seconds["drill"] = time.perf_counter() - t0
    finally:
        if proc is not None and proc.poll() is None:  # interrupted (e.g. Ctrl-C): stop the build we started
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        server.close()

    drill_prompts = server.prompts("drill:")
    res.drill_requests = len(drill_prompts)
    counts = Counter(drill_prompts)
    res.prompts_asked_more_than_once = sum(1 for c in counts.values() if c > 1)
    res.extra_requests = sum(c - 1 for c in counts.values())
    res.missing_prompts = len(set(reference_prompts) - set(counts))
    seen: set[str] = set()
    for _, prompts in sorted(server.by_phase("drill:").items()):
        res.most_reasked_by_one_restart = max(res.most_reasked_by_one_restart, len(set(prompts) & seen))
        seen.update(prompts)
    res.comparison = compare_stores(ref_dir / "intents.safetensors", drill_dir / "intents.safetensors")
    res.temp_files = leftover_temp_files(drill_dir)
    return res


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="SIGKILL a store build at random moments, resume it, compare with an "
        "uninterrupted build (fake local OpenAI-compatible server)."
    )
    p.add_argument("--kills", type=int, default=20, help="number of SIGKILLs (default 20)")
    p.add_argument("--seed", type=int, default=0, help="seed of the inputs and the kill delays (default 0)")
    p.add_argument("--sessions", type=int, default=40, help="synthetic sessions (default 40; 2 prompts each)")
    p.add_argument("--items", type=int, default=60, help="synthetic catalogue items (default 60)")
    p.add_argument("--batch-size", type=int, default=10, help="builder --batch-size (>= 9; default 10)")
    p.add_argument("--server-delay", type=float, default=0.8, help="seconds the fake server takes per request")
    p.add_argument("--threads", type=int, default=1, help="builder --threads (default 1)")
    p.add_argument(
        "--workdir",
        default=None,
        help="folder for inputs, builds and logs (default: a new temp folder, removed at the end unless --keep)",
    )
    p.add_argument("--keep", action="store_true", help="keep the temporary work folder")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    own = args.workdir is None
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="llm4sbr_fault_drill_"))
    print(
        f"fault drill: {args.kills} kills, seed {args.seed}, {args.sessions} sessions, batch {args.batch_size}, "
        f"work folder {workdir}",
        flush=True,
    )
    try:
        res = run_drill(
            workdir,
            kills=args.kills,
            seed=args.seed,
            sessions=args.sessions,
            items=args.items,
            batch_size=args.batch_size,
            server_delay=args.server_delay,
            threads=args.threads,
            log=lambda msg: print(msg, flush=True),
        )
    finally:
        if own and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print("\n=== fault drill ===")
    print(res.report())
    return 0 if res.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
