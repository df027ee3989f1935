"""The emulator's HTTP layer (Starlette): dialect routes and the admin surface."""

from ._app import create_app

__all__ = ["create_app"]
