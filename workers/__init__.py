"""RQ entry points. Run `rq worker --with-scheduler --url $REDIS_URL default` (see the README)."""
