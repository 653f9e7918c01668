"""Curation: from a run's counted events to published dataset versions, shared by the CLI and the services.

- `policy`: what a dataset version contains (the `limr select` knobs) and where the scorer publishes it.
- `selecting`: the prompts a policy picks from a ScoreResult (the one place rand/lim/linear rows map to ids).
- `progress`: how far a run is (complete epochs) and its prompt pool in the store.
- `snapshot`: the per-run scores table the query API serves.
- `checkpoint`: the scorer's per-run state (counts, cursor, ingested keys) in one object.
- `publish`: immutable, idempotent dataset versions under `datasets/`.
"""
