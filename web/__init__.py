"""The web app: the chat page and the JSON API, over the qa library."""

from .app import create_app

__all__ = ["create_app"]
