"""Where a process's memory is, from Linux's ``/proc/self``: memory-mapped files (the intent stores) apart
from the process's own anonymous memory (model, optimiser, batches).

An intent store is opened as a memory map: its pages belong to the page cache, not to the process, and
every process mapping the same file shares them. They still count in each process's RSS once touched,
so the RSS alone cannot tell store pages (data, like the dataset) from memory the training allocated.
Both functions return ``None`` where ``/proc`` is unavailable (not Linux).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

MAPPING_FIELDS = ("Rss", "Shared_Clean", "Shared_Dirty", "Private_Clean", "Private_Dirty")


def mapped_file_mb(paths: Iterable[str | Path]) -> dict[str, float] | None:
    """MiB of the given files' memory maps in this process, per ``/proc/self/smaps`` field (:data:`MAPPING_FIELDS`):
    ``Rss`` resident, ``Shared_*`` pages also mapped by another process, ``Private_*`` pages only this process
    maps (``Private_Dirty`` would be a copy it wrote; a read-only map has none)."""
    wanted = {str(Path(p).resolve()) for p in paths}
    try:
        lines = Path("/proc/self/smaps").read_text().splitlines()
    except OSError:
        return None
    total_kb = dict.fromkeys(MAPPING_FIELDS, 0)
    inside = False
    for line in lines:
        head = line.split(maxsplit=5)
        if len(head) >= 5 and "-" in head[0] and ":" in head[3]:  # a mapping's header line
            inside = len(head) == 6 and head[5] in wanted
        elif inside and head[0].rstrip(":") in total_kb:
            total_kb[head[0].rstrip(":")] += int(head[1])
    return {k: v / 1024.0 for k, v in total_kb.items()}


def anonymous_rss_mb() -> float | None:
    """MiB of this process's resident anonymous memory (``RssAnon`` in ``/proc/self/status``): what it
    allocated itself, without file-backed pages such as a memory-mapped store."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None
