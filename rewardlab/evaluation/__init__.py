"""Evaluation of reward models: ``rewardlab eval`` (scores, metrics, plots, reports)."""
