"""Adapters that drop rewardkit into RL libraries: TRL GRPO ``reward_funcs`` and verl ``compute_score``."""
