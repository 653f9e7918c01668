"""Rollout service: vLLM engines behind a Ray Serve application (see docs/rollout.md).

`types` and `config` are import-light (no vLLM, Ray or torch); `engine` is the only module that imports vLLM;
`app` builds the Serve application; `client` talks to it over HTTP or through a deployment handle.
"""
