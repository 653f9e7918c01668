"""HTTP routers of the query API."""
