"""The stages of a build, one job a module, in the order :func:`~llm4sbr_adapter.offline.pipeline.run_build`
runs them: :mod:`.read`, :mod:`.render`, :mod:`.answer` (load the LLM, answer, clean), :mod:`.embed` (load
the encoder, encode answers and titles), :mod:`.localize`, :mod:`.write`. Each function works on its own."""
