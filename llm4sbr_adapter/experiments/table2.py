"""``python -m llm4sbr_adapter.experiments.table2``: the short name of :mod:`.evaluation.table2`, kept for scripts."""

from .evaluation.table2 import main

if __name__ == "__main__":
    raise SystemExit(main())
