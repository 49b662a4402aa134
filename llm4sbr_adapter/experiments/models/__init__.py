"""Session models for the experiments: the backbones (:mod:`.backbones`: SR-GNN, NARM, STAMP), their batching
and session graphs (:mod:`.batching`) and a backbone with an optional enhancer (:mod:`.recommender`)."""
