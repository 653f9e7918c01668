"""The `limr demo` building blocks: a synthetic run of reward events, a summary report and the LIM plot."""

from limr.demo.report import report
from limr.demo.synthetic import PROFILES, SyntheticRun, write_synthetic_run
from limr.view.plots import plot_trajectories

__all__ = ["PROFILES", "SyntheticRun", "plot_trajectories", "report", "write_synthetic_run"]
