"""Reward-hacking diagnostics: probes, length exploitation, ensemble disagreement, best-of-N."""
