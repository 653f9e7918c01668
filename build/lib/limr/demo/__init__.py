"""The `limr demo` building blocks: a synthetic run of reward events, a summary report and the LIM plot."""

from limr.demo.report import plot_trajectories, report
from limr.demo.synthetic import PROFILES, SyntheticRun, write_synthetic_run

__all__ = ["PROFILES", "SyntheticRun", "plot_trajectories", "report", "write_synthetic_run"]
