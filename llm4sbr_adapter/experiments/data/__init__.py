"""Data for the experiments: raw readers (:mod:`.raw_data`), the split protocols (:mod:`.paper_protocol`,
:mod:`.temporal_protocol`, :mod:`.clicks_protocol`), the split files written (:mod:`.dataset_files`) and
read (:mod:`.splits`), the item catalogue (:mod:`.catalogue`), and four commands: :mod:`.prepare_data`,
:mod:`.split_sample` (a seeded sample of a split), and the control stores :mod:`.text_mean_store` (mean
title embeddings, the text-only baseline) and :mod:`.shuffle_store` (a store's intents given to other sessions)."""
