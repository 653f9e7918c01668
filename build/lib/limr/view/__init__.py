"""What people look at: a run's LIM picture (scores, trajectories, thresholds) and dataset versions, shaped
for the dataset service's query routes and its web view (`/ui/`). Pure data: no HTTP, no HTML."""
