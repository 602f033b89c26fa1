"""The RQ worker class to run: `rq worker --worker-class workers.worker.AppWorker`.

RQ forks a work horse for every job. Left alone, each horse created the Flask app (configuration,
extensions, blueprints) again on its first job — more than most jobs cost. This worker creates the app once,
before forking, so every horse inherits it; each horse then starts with its own database connections
(SQLAlchemy's advice for os.fork: drop the inherited pool without closing the parent's connections).
"""

import os

from rq import Worker


class AppWorker(Worker):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from portal.extensions import db
        from workers.jobs import _app

        with _app().app_context():
            engine = db.engine
        os.register_at_fork(after_in_child=lambda: engine.dispose(close=False))
