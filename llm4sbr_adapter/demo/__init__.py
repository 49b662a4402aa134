"""The embedded demo: sessions and items (``demo_*.tsv``) and a stand-in LLM for tutorials and tests."""
