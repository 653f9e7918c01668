"""Models for CPU work: a tiny Qwen2 (`tiny`) and a short supervised warm start (`sft`)."""
