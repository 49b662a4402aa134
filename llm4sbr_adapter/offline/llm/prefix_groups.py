"""Group prompts that share an opening, so a backend reads the shared tokens once.

The answer loop hands a prefix-reusing backend its prompts in sorted order (see
:func:`~llm4sbr_adapter.offline.llm.cache.answer_prompts`): the perspectives of one session, which list
the same items and differ only in the qualifier after the listing, are neighbours, and so are the
prefix-augmented rows of one user, whose listings extend one another. :func:`prefix_groups` cuts such
a run of token lists into groups whose members share a long common prefix; a backend reads each
group's prefix once and only each member's remaining tokens (its suffix) on top of it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["PrefixGroup", "prefix_groups", "shared_prefix_length"]

#: A prompt joins the group before it when the group's shared prefix (with the prompt added) covers at
#: least this fraction of every member's length; below it the padding of unequal suffixes would cost
#: more than the shared reading saves.
DEFAULT_MIN_SHARE = 0.5


@dataclass(frozen=True)
class PrefixGroup:
    """Prompts (by index) whose first ``prefix`` tokens are identical; every member has at least one more."""

    prefix: int
    members: tuple[int, ...]


def shared_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    """Number of leading tokens ``a`` and ``b`` have in common."""
    return len(os.path.commonprefix([list(a), list(b)]))


def prefix_groups(
    token_lists: Sequence[Sequence[int]], max_members: int, min_share: float = DEFAULT_MIN_SHARE
) -> list[PrefixGroup]:
    """Cut ``token_lists`` (in their given order) into runs of neighbours with a long shared prefix.

    A prompt joins the current group when the prefix it shares with the group's first member, taken
    with the group's prefix so far, is at least ``min_share`` of the longest member's length and the
    group has fewer than ``max_members`` members. The prefix always leaves each member at least one
    token of its own (the token whose logits start its answer).
    """
    if max_members < 1:
        raise ValueError(f"max_members must be >= 1, got {max_members}")
    groups: list[PrefixGroup] = []
    first: Sequence[int] = ()
    longest = 0
    for i, ids in enumerate(token_lists):
        if groups and len(groups[-1].members) < max_members:
            last = groups[-1]
            shared = min(last.prefix, shared_prefix_length(first, ids), len(ids) - 1)
            if shared >= min_share * max(longest, len(ids)) and shared > 0:
                groups[-1] = PrefixGroup(shared, (*last.members, i))
                longest = max(longest, len(ids))
                continue
        first, longest = ids, len(ids)
        groups.append(PrefixGroup(max(len(ids) - 1, 0), (i,)))
    return groups
