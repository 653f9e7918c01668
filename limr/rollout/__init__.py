"""Rollout service: vLLM engines behind a Ray Serve application (see docs/rollout.md).

Import-light (no vLLM, Ray or torch): `types`, `config`, `api` and `buckets`. vLLM is imported by `engine` (the
engine adapter), `openai_api` (vLLM's OpenAI serving layer over that engine) and `transfer` (the gloo
weight-transfer engines registered with vLLM), and only inside a replica or the learner's publisher. `app` builds the
Serve application, `sync` keeps the replicas on one weight version (the `WeightHub` and each replica's membership),
`client` talks to the service over HTTP or through a deployment handle.
"""
