"""The experiment harness: everything the reproduction of the LLM4SBR paper needs beyond the library,
grouped by job.

* :mod:`.data`: raw readers, the paper / temporal / clicks protocols, split files, ``prepare_data``,
  ``split_sample``, the control stores (``text_mean_store``, ``shuffle_store``).
* :mod:`.models`: backbones (SR-GNN, NARM, STAMP), batching and session graphs.
* :mod:`.training`: ``TrainConfig``, the training loop and the ``train`` / ``hiphop_srgnn`` commands.
* :mod:`.evaluation`: metrics, the user-clustered bootstrap, ``summarize``, ``table2``, ``seen_targets``,
  ``intent_quality``.
* :mod:`.baselines` (simple session baselines) and :mod:`.recbole_srgnn` (RecBole's SR-GNN with the enhancer).

Each command runs as ``python -m llm4sbr_adapter.experiments.<job>.<name> --help``; the short names
``python -m llm4sbr_adapter.experiments.<name>`` (``prepare_data``, ``split_sample``, ``shuffle_store``,
``text_mean_store``, ``train``, ``hiphop_srgnn``, ``summarize``, ``table2``, ``seen_targets``,
``intent_quality``) forward to them.
Some need the ``examples`` extra (scipy, matplotlib).
"""
