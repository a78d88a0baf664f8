"""``python -m watchkeeper.cli`` (the demo starts serve this way)."""

from watchkeeper.cli import app

if __name__ == "__main__":
    app()
