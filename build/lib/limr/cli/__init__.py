"""The `limr` command line. Each module registers one group of commands; heavy imports stay inside commands
so that `limr score`/`limr select` never import torch, Ray or vLLM."""
