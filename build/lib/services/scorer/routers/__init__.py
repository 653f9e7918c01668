"""HTTP routers of the scorer."""
