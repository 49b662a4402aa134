"""``python -m llm4sbr_adapter.experiments.text_mean_store``: the short name of
:mod:`.data.text_mean_store`, kept for scripts."""

from .data.text_mean_store import main

if __name__ == "__main__":
    raise SystemExit(main())
