"""``python -m llm4sbr_adapter.experiments.hiphop_srgnn``: the short name of
:mod:`.training.hiphop_srgnn`, kept for scripts."""

from .training.hiphop_srgnn import main

if __name__ == "__main__":
    raise SystemExit(main())
