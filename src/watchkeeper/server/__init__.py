"""HTTP edge: the FastAPI app (JSON API under /api/v1, /healthz, /metrics)."""

from watchkeeper.server.app import create_app

__all__ = ["create_app"]
