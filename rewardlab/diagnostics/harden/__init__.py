"""``rewardlab harden``: repair a reward model that RL hacks, and show it repaired on the same prompts.

config.py (HardenConfig: rlcheck's options plus the repair's), data.py (the original data's split,
the training mixes, held-out accuracy, the choice of the exploit pairs' weight), run.py (the rounds:
check, export, retrain, check again), report.py (harden.json, harden.md).
"""
