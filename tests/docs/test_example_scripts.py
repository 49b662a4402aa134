"""The short scripts under examples/ run as a user would run them."""

import subprocess
import sys
from pathlib import Path

import llm4sbr_adapter

EXAMPLES = Path(llm4sbr_adapter.__file__).resolve().parents[1] / "examples"


def run(script: str, *args: str) -> str:
    done = subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_gru_example_trains_with_intents():
    out = run("gru_with_intents.py", "--epochs", "2")
    losses = [float(line.split("loss ")[1].split()[0]) for line in out.splitlines() if line.startswith("epoch")]
    assert len(losses) == 2 and losses[1] < losses[0]


def test_recbole_example_is_the_harness_command_line():
    assert "--export-sessions" in run("recbole_srgnn.py", "--help")
