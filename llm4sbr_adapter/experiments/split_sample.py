"""``python -m llm4sbr_adapter.experiments.split_sample``: the short name of :mod:`.data.split_sample`, kept for
scripts."""

from .data.split_sample import main

if __name__ == "__main__":
    raise SystemExit(main())
