"""`limr plan`: what a run will cost and whether it fits, before anything starts (docs/scale.md).

shape: model parameter counts from config.json; estimate: steps, bytes, memory and time of one learner run (from
the learner's own Derived); check: the problems that make a run impossible or wasteful; sources: plans from a
learner config, an experiment config, the chart's values or a RayJob manifest.
"""
