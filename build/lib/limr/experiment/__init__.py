"""`limr experiment`: the LIMR study (FULL vs LIM vs RAND vs dynamic sampling) through the real system.

- `config`: the typed experiment config; an arm = name + pool source + curation mode + seeds.
- `arms`: run plans (ids, budgets), what the store already has, each arm's `--prompts`.
- `services`: `limr serve scorer` / `limr serve datasets` processes and the API calls the study makes.
- `runner`: warm start, pool, one rollout service for every run, the runs in order, LIM/RAND publishing.
- `results`, `report`, `plots`: curves from the store, per-arm mean and spread, results.json/.md, PNGs.
"""
