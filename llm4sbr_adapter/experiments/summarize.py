"""``python -m llm4sbr_adapter.experiments.summarize``: the short name of
:mod:`.evaluation.summarize`, kept for scripts."""

from .evaluation.summarize import main

if __name__ == "__main__":
    raise SystemExit(main())
