"""``python -m llm4sbr_adapter.experiments.shuffle_store``: the short name of :mod:`.data.shuffle_store`, kept
for scripts."""

from .data.shuffle_store import main

if __name__ == "__main__":
    raise SystemExit(main())
