"""Jobs are enqueued only after the transaction that needs them commits."""

from portal.extensions import db as _db
from portal.models import Account
from portal.queue import enqueue_after_commit, get_queue


def test_nothing_is_enqueued_before_commit_or_after_rollback(app, db, redis):
    queue = get_queue()
    _db.session.add(Account(name="A", cvr="35000046"))
    enqueue_after_commit("workers.jobs.send_password_reset_mail", 1, "http://x/")
    assert queue.count == 0
    _db.session.rollback()
    assert queue.count == 0
    _db.session.commit()  # the rolled-back job is gone for good
    assert queue.count == 0

    _db.session.add(Account(name="B", cvr="35000054"))
    enqueue_after_commit("workers.jobs.send_password_reset_mail", 1, "http://x/")
    _db.session.commit()
    assert queue.count == 1
    assert queue.jobs[0].func_name == "workers.jobs.send_password_reset_mail"
