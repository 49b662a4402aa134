"""``python -m llm4sbr_adapter.experiments.prepare_data``: the short name of
:mod:`.data.prepare_data`, kept for scripts."""

from .data.prepare_data import main

if __name__ == "__main__":
    raise SystemExit(main())
