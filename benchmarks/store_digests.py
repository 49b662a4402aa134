"""sha256 of every per-session array of intent stores, as JSON: what a replay build must reproduce.

    python benchmarks/store_digests.py A.safetensors B.safetensors > digests.json

Keys are the store file names; values map each array (intents, top items and weights, cleaned and raw
answers, session ids) to the sha256 of its bytes. Metadata (creation time, the LLM's name) is left out: a
replay build names its LLM differently but must produce the same arrays.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from llm4sbr_adapter.store.digest import array_digests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stores", nargs="+", type=Path)
    args = parser.parse_args()
    print(json.dumps({p.name: array_digests(p) for p in args.stores}, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
