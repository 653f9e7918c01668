"""Prompt pools: loading prompt records (JSON, JSONL, Parquet) with stable ids."""

from limr.data.pool import Duplicate, Pool, PoolError, load_pool

__all__ = ["Duplicate", "Pool", "PoolError", "load_pool"]
