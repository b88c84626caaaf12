"""``rewardlab rlcheck``: reward hacking in a real RL loop (short GRPO runs against the reward model).

run.py (the command: arms, training loop, outputs), config.py (RLCheckConfig), rewards.py (the proxy,
the gold and what each arm optimises), prompts.py (the demo prompts or the user's --prompts-file),
eval_set.py (the held-out prompts, completions, signals and KL), verdict.py (over-optimisation read
from the curves), proxy_only.py (the verdict without a gold), monitor_check.py (the hacking monitor's
signals and rule validated against the gold),
exports.py (completions.jsonl, exploit_pairs.jsonl, candidates.jsonl), report.py
(rlcheck.json/.md/.html).
"""
