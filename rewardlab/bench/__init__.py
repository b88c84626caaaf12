"""Benchmarks: measured, reproducible comparisons (``rewardlab bench``)."""
