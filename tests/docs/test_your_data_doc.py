"""docs/your-data.md: every ``bash`` block of the page runs, in order, and the numbers it quotes hold.

The blocks run from a scratch folder whose ``docs`` links to the repository's, so outputs land in the
scratch folder's ``runs/`` (the LLM is the page's stand-in; the encoder is the default MiniLM).
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

import llm4sbr_adapter

REPO = Path(llm4sbr_adapter.__file__).resolve().parents[1]
PAGE = REPO / "docs" / "your-data.md"


def _bash_blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)```", PAGE.read_text(encoding="utf-8"), flags=re.S)


@pytest.mark.slow  # about a minute: every command of the page, with the real encoder
def test_every_command_of_the_page_runs(tmp_path):
    (tmp_path / "docs").symlink_to(REPO / "docs")
    blocks = _bash_blocks()
    assert len(blocks) == 4
    outputs = []
    for block in blocks:
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block],
            cwd=tmp_path,
            env={**os.environ, "TOKENIZERS_PARALLELISM": "false"},
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, f"{block}\nfailed:\n{done.stderr[-3000:]}"
        outputs.append(done.stdout)
    assert "untitled items:  5 of the sessions' 100 distinct items" in outputs[0]
    assert "LLM:             not called (dry run)" in outputs[0]
    runs = tmp_path / "runs" / "mydata"
    alone = json.loads((runs / "srgnn.json").read_text())
    enhanced = json.loads((runs / "srgnn_enhancer.json").read_text())
    assert not alone["enhancer"] and enhanced["enhancer"]
    assert enhanced["log"][0]["train_aux"] != 0 and alone["log"][0]["train_aux"] == 0
    text = PAGE.read_text(encoding="utf-8")
    quoted_rows = int(re.search(r"One epoch on (\d+) training rows", text).group(1))
    assert quoted_rows == json.loads((runs / "stats.json").read_text())["splits"]["train"]["rows"]


def test_the_page_describes_the_shipped_log():
    text = PAGE.read_text(encoding="utf-8")
    clicks, sessions, items = (
        int(x) for x in re.search(r"(\d+) clicks of (\d+) sessions over the (\d+)", text).groups()
    )
    with open(REPO / "docs" / "data" / "clicks.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    with open(REPO / "docs" / "data" / "items.csv", newline="", encoding="utf-8") as f:
        catalogue = list(csv.DictReader(f))
    assert (clicks, sessions, items) == (len(rows), len({r["session_id"] for r in rows}), len(catalogue))
    assert "Five of our 100 items have no title" in text
    assert sum(not r["title"] for r in catalogue) == 5
