"""Adapters for third-party training frameworks (optional extras; each module imports its framework).

* :mod:`llm4sbr_adapter.integrations.recbole_config`: a RecBole ``Config`` that works on numpy 2 and
  ignores the host script's command line; the ``intent_*`` config keys.
* :mod:`llm4sbr_adapter.integrations.recbole_wrapper`: :class:`IntentRecBole`, the enhancer added to any
  RecBole ``SequentialRecommender`` (SRGNN, NARM, STAMP, GRU4Rec, SASRec, ...).
"""
