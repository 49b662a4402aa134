"""``python -m llm4sbr_adapter.experiments.intent_quality``: the short name of
:mod:`.evaluation.intent_quality`, kept for scripts."""

from .evaluation.intent_quality import main

if __name__ == "__main__":
    raise SystemExit(main())
