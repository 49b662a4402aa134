"""``python -m llm4sbr_adapter.experiments.seen_targets``: the short name of
:mod:`.evaluation.seen_targets`, kept for scripts."""

from .evaluation.seen_targets import main

if __name__ == "__main__":
    raise SystemExit(main())
