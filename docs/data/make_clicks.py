"""Write the synthetic click log of docs/your-data.md (seeded; rerun to get the same bytes).

    python docs/data/make_clicks.py

``clicks.csv``: ``session_id,item_id,timestamp`` (unix seconds), one click per row, rows of
different sessions interleaved as a live log is. Each session browses mostly one category of the
demo catalogue. ``items.csv``: ``item ID,title`` with a header, the demo's titles in CSV quoting,
a few with HTML entities as scraped catalogues have them, and five items without a title.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DEMO_ITEMS = HERE.parents[1] / "llm4sbr_adapter" / "demo" / "demo_items.tsv"


def main() -> None:
    rng = np.random.default_rng(16)
    rows = [line.split("\t") for line in DEMO_ITEMS.read_text(encoding="utf-8").splitlines()[1:]]
    by_category: dict[str, list[int]] = {}
    for item_id, _, category in rows:
        by_category.setdefault(category, []).append(int(item_id))
    categories = sorted(by_category)
    clicks = []
    start = 1_700_000_000
    for s in range(120):
        home = by_category[categories[rng.integers(len(categories))]]
        t = start + s * 900 + int(rng.integers(0, 600))
        for _ in range(int(rng.integers(2, 7))):
            pool = home if rng.random() < 0.85 else by_category[categories[rng.integers(len(categories))]]
            clicks.append((f"S{s + 1:03d}", int(pool[rng.integers(len(pool))]), t))
            t += int(rng.integers(20, 240))
    clicks.sort(key=lambda c: (c[2], c[0]))  # a live log: rows in time order, sessions interleaved
    with open(HERE / "clicks.csv", "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(["session_id", "item_id", "timestamp"])
        out.writerows(clicks)
    untitled = {int(rows[k][0]) for k in rng.choice(len(rows), size=5, replace=False)}
    with open(HERE / "items.csv", "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(["item ID", "title"])
        for item_id, title, _ in rows:
            title = title.replace(" and ", " &amp; ", 1) if " and " in title else title
            out.writerow([item_id, "" if int(item_id) in untitled else title])
    print(f"wrote {len(clicks)} clicks of 120 sessions and {len(rows)} items ({len(untitled)} untitled)")


if __name__ == "__main__":
    main()
