"""Pure algorithms (numpy/torch only; no Ray, vLLM or store clients): LIM scoring and selection, PPO math."""
