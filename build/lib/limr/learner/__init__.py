"""The PPO/GRPO learner: config, models, the RL loop on Ray Train (see docs/learner.md)."""
