"""The experiment harness: everything the reproduction of the LLM4SBR paper needs beyond the library.

Data preparation under the authors' protocol and a temporal one (:mod:`.prepare_data`), batching and
session graphs (:mod:`.session_data`), backbones (:mod:`.backbones`: SR-GNN, NARM, STAMP), simple
session baselines (:mod:`.baselines`), the training loop (:mod:`.train`), metrics, the user-clustered
bootstrap and the summaries (:mod:`.metrics`, :mod:`.bootstrap`, :mod:`.summarize`, :mod:`.table2`).
Each module with a ``main`` runs as ``python -m llm4sbr_adapter.experiments.<name> --help``.
Some need the ``examples`` extra (scipy, matplotlib).
"""
