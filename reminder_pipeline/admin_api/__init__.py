"""The authenticated admin HTTP API (FastAPI)."""
