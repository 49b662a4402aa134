"""Evaluation: ranks and metrics (:mod:`.metrics`), the user-clustered bootstrap (:mod:`.bootstrap`), and the
commands that read finished runs: :mod:`.summarize`, :mod:`.table2` and :mod:`.seen_targets`."""
