"""limr's data-curation services, separate from the Ray cluster.

- `services.scorer`: consumes reward events from object storage as training writes them, keeps per-run
  prompt x epoch counts in atomic checkpoints (exactly-once by object key), rescores with LIM as epochs
  complete and publishes curated dataset versions.
- `services.datasets`: the read/query API over runs, scores and published datasets (+ authenticated publish).

Both talk only to the object store, so they scale and restart independently of training.
"""
