"""The one tiny test LLM: it answers with a title its prompt lists, so no test needs a model or a download.

In-process tests make a :class:`TitleLLM` (or take the ``title_llm`` fixture of ``conftest.py``); child
processes name it as ``--llm py:tiny_llm:make`` (the tests folder is on their ``PYTHONPATH``): ``make()``
answers ``Answer: <last title>``, sleeps ``FAKE_DELAY`` seconds per batch and appends each batch of
prompts to the file ``FAKE_LOG`` as one JSON line.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Sequence
from typing import Literal

from llm4sbr_adapter.offline.llm.base import GenerationConfig, LLMBackend

# One listed item of a prompt: "<n>. <title>_<item id>".
LINE = re.compile(r"^\d+\. (.*)_(\w+)$")


def listed_titles(prompt: str) -> list[str]:
    """The titles a prompt lists, in order."""
    return [m.group(1) for m in map(LINE.match, prompt.splitlines()) if m]


class TitleLLM(LLMBackend):
    """Answers ``answer`` (``{title}``: the first or last listed title, ``{count}``: how many are listed),
    or an empty answer when a listed title is in ``empty_for``; records every prompt in ``prompts``."""

    def __init__(
        self,
        pick: Literal["first", "last"] = "last",
        *,
        answer: str = "{title}",
        empty_for: Sequence[str] = (),
        model_id: str = "title-llm-v1",
        delay: float = 0.0,
        log: str | None = None,
    ) -> None:
        self.pick, self.answer, self.empty_for = pick, answer, tuple(empty_for)
        self.model_id, self.delay, self.log = model_id, delay, log
        self.prompts: list[str] = []

    def generate(self, prompts: Sequence[str], config: GenerationConfig) -> list[str]:
        time.sleep(self.delay)
        self.prompts.extend(prompts)
        out = []
        for prompt in prompts:
            titles = listed_titles(prompt)
            title = titles[0] if self.pick == "first" else titles[-1]
            empty = any(t in self.empty_for for t in titles)
            out.append("" if empty else self.answer.format(title=title, count=len(titles)))
        if self.log:
            with open(self.log, "a") as f:
                f.write(json.dumps(list(prompts)) + "\n")
        return out


def make() -> TitleLLM:
    """The backend of ``--llm py:tiny_llm:make`` in a child process (module docstring)."""
    delay = float(os.environ.get("FAKE_DELAY", "0"))
    return TitleLLM(answer="Answer: {title}", model_id="fake-llm-v1", delay=delay, log=os.environ.get("FAKE_LOG"))
