"""Reward events: the contract between learner, scorer and everything else (see docs/events.md)."""
