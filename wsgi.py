"""WSGI entry point: `gunicorn wsgi:app` in production, `flask --app wsgi …` for the CLI."""

import gc

from portal import create_app

app = create_app()
# What is built by now (modules, models, the app) lives as long as the process. Frozen, the garbage
# collector never walks it again: its full collections took 100–200 ms in the middle of a request on a busy
# machine (one request in ~35 of the transfer log), now a few ms (`make bench-portal`).
gc.freeze()
