"""Any RecBole sequential model with intents (or its baseline arm), trained with RecBole's own Trainer.

The wrapper is :class:`llm4sbr_adapter.integrations.recbole_wrapper.IntentRecBole`; this script is the
command line of :mod:`llm4sbr_adapter.experiments.recbole_srgnn` (docs/integration-recbole.md):

    python examples/recbole_srgnn.py --help
    python examples/recbole_srgnn.py --data-path DATA --dataset NAME --export-sessions rows.jsonl
    python -m llm4sbr_adapter.build_store --sessions rows.jsonl --items items.tsv --output rows.safetensors
    python examples/recbole_srgnn.py --data-path DATA --dataset NAME --model NARM --store rows.safetensors
    python examples/recbole_srgnn.py --data-path DATA --dataset NAME --model NARM   # baseline arm
"""

from llm4sbr_adapter.experiments.recbole_srgnn import main

if __name__ == "__main__":
    main()
