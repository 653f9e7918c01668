"""limr: LIM-curated, data-efficient RL post-training on Ray."""

__version__ = "0.1.0"
