"""``python -m llm4sbr_adapter.experiments.train``: the short name of :mod:`.training.train`, kept for scripts."""

from .training.train import main

if __name__ == "__main__":
    raise SystemExit(main())
