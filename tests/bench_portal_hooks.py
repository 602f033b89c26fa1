"""gunicorn hooks for `make bench-portal` (`-c python:tests.bench_portal_hooks`): each request's CPU time in
the web worker, appended to $BENCH_TIMINGS. On a shared machine the wall time includes waiting for a core;
the CPU time is the work the page itself costs."""

import os
import time


def pre_request(worker, req):
    req.bench_cpu = time.process_time()


def post_request(worker, req, environ, resp):
    cpu_ms = (time.process_time() - req.bench_cpu) * 1000
    with open(os.environ["BENCH_TIMINGS"], "a") as timings:
        timings.write(f"{cpu_ms:.3f}\n")
