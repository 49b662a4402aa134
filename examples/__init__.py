"""Reproduction harness for the LLM4SBR paper: data preparation, backbones, training and evaluation.

These are runnable scripts (``python -m examples.train --help``), not part of the installed library.
"""
