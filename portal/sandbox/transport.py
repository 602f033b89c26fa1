"""Talking to a sandbox in-process: httpx over WSGI into this same app, with the failures a network
would show (a dropped connection, a read timeout) translated into the httpx exceptions a real socket gives.
"""

import time

import httpx

from portal.sandbox.faults import DROPPED_HEADER, ConnectionDropped

IN_PROCESS_ORIGIN = "http://sandbox.bogbro.internal"


def _wsgi_path(app):
    """httpx puts the decoded path into PATH_INFO as text; WSGI wants its UTF-8 bytes as latin-1 (what a
    real server sends), else a path with "å" or "€" in it reaches the app garbled or not at all."""

    def wrapped(environ, start_response):
        environ["PATH_INFO"] = environ["PATH_INFO"].encode("utf-8").decode("latin-1")
        return app(environ, start_response)

    return wrapped


class SandboxTransport(httpx.WSGITransport):
    def __init__(self, app):
        super().__init__(app=_wsgi_path(app), raise_app_exceptions=True)
        self.flask_app = app

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        started = time.monotonic()
        try:
            # A fresh app context: the sandbox gets its own `g` and database session, as it would in
            # another process; otherwise it would commit (or reset) the caller's unfinished work.
            with self.flask_app.app_context():
                response = super().handle_request(request)
        except ConnectionDropped as exc:  # an app without the sandbox's handler for it
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            ) from exc
        if DROPPED_HEADER in response.headers:
            response.close()
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            )
        read_timeout = (request.extensions.get("timeout") or {}).get("read")
        if read_timeout is not None and time.monotonic() - started > read_timeout:
            # The sandbox did the work, but too late: exactly the ambiguous case a real timeout creates.
            raise httpx.ReadTimeout("The read operation timed out", request=request)
        return response
