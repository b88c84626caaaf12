"""``rewardlab rlcheck``: reward hacking in a real RL loop (short GRPO runs against the reward model).

run.py (the command: arms, training loop, outputs), config.py (RLCheckConfig), eval_set.py (the
held-out prompts, completions and KL), verdict.py (over-optimisation read from the curves), report.py
(rlcheck.json/.md/.html).
"""
