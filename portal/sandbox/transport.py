"""Talking to a sandbox in-process: httpx over WSGI into this same app, with the failures a network
would show (a dropped connection, a read timeout) translated into the httpx exceptions a real socket gives.
"""

import time

import httpx

from portal.sandbox.faults import ConnectionDropped

IN_PROCESS_ORIGIN = "http://sandbox.bogbro.internal"


class SandboxTransport(httpx.WSGITransport):
    def __init__(self, app):
        super().__init__(app=app, raise_app_exceptions=True)
        self.flask_app = app

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        started = time.monotonic()
        try:
            # A fresh app context: the sandbox gets its own `g` and database session, as it would in
            # another process; otherwise it would commit (or reset) the caller's unfinished work.
            with self.flask_app.app_context():
                response = super().handle_request(request)
        except ConnectionDropped as exc:
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            ) from exc
        read_timeout = (request.extensions.get("timeout") or {}).get("read")
        if read_timeout is not None and time.monotonic() - started > read_timeout:
            # The sandbox did the work, but too late: exactly the ambiguous case a real timeout creates.
            raise httpx.ReadTimeout("The read operation timed out", request=request)
        return response
