"""RecBole's SRGNN with intents: subclass, bind one store per split, train with RecBole's trainer.

The subclass (``IntentSRGNN``) and its command line live in
:mod:`llm4sbr_adapter.experiments.recbole_srgnn`; docs/integration-recbole.md walks through the lines it
adds. This script is that command line:

    python examples/recbole_srgnn.py --help
    python examples/recbole_srgnn.py --data-path DATA --dataset NAME --export-sessions train.jsonl
    python -m llm4sbr_adapter.build_store --sessions train.jsonl --items items.tsv --output train.safetensors
    python examples/recbole_srgnn.py --data-path DATA --dataset NAME --store train.safetensors ...
"""

from llm4sbr_adapter.experiments.recbole_srgnn import main

if __name__ == "__main__":
    main()
