"""The emulator's HTTP layer (Starlette): what every dialect's routes share, the app, admin.

`emulator.http._app.create_app` builds the ASGI app; it is not imported here, so that the
dialects can use `emulator.http._common` while the app imports them.
"""
