"""A stand-in LLM for tutorials and CI: it answers every prompt with the title of the last item listed.

``--llm py:llm4sbr_adapter.demo.last_title_llm:make`` runs stage one in seconds with no model, so a
page of commands can be tested end to end. Its "intent" is only the most recent item; use a real
model (``--llm llamacpp:default``, ``openai:...``) for intents worth training on.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..offline.llm.base import LLMBackend

_LISTED = re.compile(r"^\s*\d+\.\s+(.*)_[^_\s]+\s*$")  # "3. Title_itemid", as prompts.item_lines renders items


class LastTitleLLM(LLMBackend):
    """Answers with the last ``N. Title_id`` line's title (empty when a prompt lists no item)."""

    model_id = "last-title-stand-in-v1"

    def generate(self, prompts: Sequence[str], config: object = None) -> list[str]:
        out = []
        for prompt in prompts:
            titles = [m.group(1) for m in map(_LISTED.match, prompt.splitlines()) if m]
            out.append(titles[-1] if titles else "")
        return out


def make() -> LastTitleLLM:
    """The factory ``--llm py:llm4sbr_adapter.demo.last_title_llm:make`` calls."""
    return LastTitleLLM()
