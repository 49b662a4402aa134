"""Issue 24, item 6: Ctrl-C ends every command with one line (what was kept, the command that resumes) and
exit status 130, never a traceback; an operating-system error is one line naming the flag and the path."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from llm4sbr_adapter.build_store import main as build_main
from llm4sbr_adapter.experiments.baselines import cli as baselines
from llm4sbr_adapter.experiments.data import prepare_data
from llm4sbr_adapter.experiments.evaluation import summarize, table2
from llm4sbr_adapter.offline.llm.cache import AnswerCache

# A backend that answers two prompts and then behaves as if the user pressed Ctrl-C.
INTERRUPTING = textwrap.dedent(
    """
    from llm4sbr_adapter.offline.llm.base import LLMBackend

    class Interrupting(LLMBackend):
        model_id = "interrupting-fake"
        calls = 0

        def generate(self, prompts, config):
            Interrupting.calls += 1
            if Interrupting.calls > 2:
                raise KeyboardInterrupt
            return ["Apple" for _ in prompts]

    def make():
        return Interrupting()
    """
)


@pytest.fixture
def build_inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "interrupting_llm.py").write_text(INTERRUPTING)
    (tmp_path / "s.tsv").write_text("s1\t1 2\ns2\t2 3\n")
    (tmp_path / "items.tsv").write_text("1\tApple\n2\tBanana\n3\tCherry\n")
    return tmp_path


def test_build_interrupted_keeps_the_answers_and_says_how_to_resume(
    build_inputs: Path, capsys: pytest.CaptureFixture
) -> None:
    argv = ["--sessions", "s.tsv", "--items", "items.tsv", "--output", "out.safetensors"]
    argv += ["--llm", "py:interrupting_llm:make", "--batch-size", "1", "--top-f", "2", "--no-progress"]
    assert build_main(argv) == 130
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert "Traceback" not in err
    assert last.startswith("interrupted: kept every LLM answer received so far, in out.safetensors.answers.sqlite3")
    assert last.endswith("--llm py:interrupting_llm:make --batch-size 1 --top-f 2 --no-progress")
    assert not (build_inputs / "out.safetensors").exists()  # the output is written whole or not at all
    with AnswerCache(build_inputs / "out.safetensors.answers.sqlite3") as cache:
        assert len(cache) == 2  # the two batches answered before the interrupt


@pytest.mark.parametrize("module", [prepare_data, summarize, table2, baselines])
def test_other_commands_end_ctrl_c_with_one_line(module, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    def pressed(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", pressed)
    assert module.main(["--x"]) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("interrupted: kept no output was replaced")


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_a_real_sigint_gives_exit_130_and_no_traceback(tmp_path: Path) -> None:
    """SIGINT delivered to a running command (here waiting on its LLM) ends it with one line and 130."""
    (tmp_path / "slow_llm.py").write_text(
        "import time\nfrom llm4sbr_adapter.offline.llm.base import LLMBackend\n"
        "class Slow(LLMBackend):\n    model_id = 'slow'\n"
        "    def generate(self, prompts, config):\n        time.sleep(60)\n\n"
        "def make():\n    return Slow()\n"
    )
    (tmp_path / "s.tsv").write_text("s1\t1 2\n")
    (tmp_path / "items.tsv").write_text("1\tApple\n2\tBanana\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "llm4sbr_adapter.build_store", "--sessions", "s.tsv", "--items", "items.tsv"]
    cmd += ["--output", "o.safetensors", "--llm", "py:slow_llm:make", "--top-f", "1", "--log-level", "warning"]
    cmd += ["--no-progress"]
    # a job started in the background by a non-interactive shell (``cmd &``) inherits SIGINT as ignored, and
    # Python then installs no handler: give the command the default disposition, as a terminal would
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint)
    deadline = time.time() + 60
    while not (tmp_path / "o.safetensors.answers.sqlite3").exists() and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.count("\n") == 1 and err.startswith("interrupted: kept every LLM answer"), err


def test_os_errors_name_the_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder").mkdir()
    (tmp_path / "items.tsv").write_text("1\tApple\n")
    argv = ["--sessions", "folder", "--items", "items.tsv", "--output", "o.safetensors", "--dry-run"]
    assert build_main(argv) == 1
    assert capsys.readouterr().err.endswith("error: --sessions folder: Is a directory\n")
    from llm4sbr_adapter.inspect_store import main as inspect_main

    assert inspect_main(["folder"]) == 1
    assert capsys.readouterr().err == "error: store folder: Is a directory\n"
