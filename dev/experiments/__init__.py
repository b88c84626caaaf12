"""Experiment scripts; run each from the repository root as ``python -m dev.experiments.NAME``."""
