"""Evaluation: ranks and metrics (:mod:`.metrics`), the user-clustered bootstrap (:mod:`.bootstrap`), and the
commands that read finished runs or stores: :mod:`.summarize`, :mod:`.table2`, :mod:`.seen_targets` and
:mod:`.intent_quality` (intents ranked as a recommender beside the title-mean control)."""
