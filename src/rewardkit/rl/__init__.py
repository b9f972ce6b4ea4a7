"""Rewards for the policy side of RLHF: the DPO implicit reward (``rl.dpo``) and KL-shaped per-token rewards
for PPO (``rl.kl``)."""

from rewardkit.rl.kl import KL_ESTIMATORS, kl_estimate, shaped_rewards, shaped_rewards_batch, shaped_rewards_ragged

__all__ = ["KL_ESTIMATORS", "kl_estimate", "shaped_rewards", "shaped_rewards_batch", "shaped_rewards_ragged"]
