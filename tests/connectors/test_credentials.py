"""Rotating credentials: one refresh across all workers, stored encrypted."""

import threading
import time

from sqlalchemy import text

from portal.models import Connection
from portal.setups.connections import DatabaseCredentialStore


def test_concurrent_refreshes_renew_once_and_everyone_gets_the_new_token(app, db, account):
    connection = Connection(
        account_id=account.id,
        system="dinero",
        label="Dinero",
        credentials={"refresh_token": "r1", "version": 1},
    )
    db.session.add(connection)
    db.session.commit()
    connection_id = connection.id  # read once here: the threads must not touch this session's objects
    renewals = []

    def renew(old):
        renewals.append(old)
        time.sleep(0.2)  # a slow token endpoint: the others must wait, not refresh again
        return {"refresh_token": "r2", "version": old["version"] + 1}

    results = []

    def worker():
        with app.app_context():
            store = DatabaseCredentialStore(connection_id)
            results.append(store.refresh(lambda c: c["refresh_token"] == "r1", renew))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert renewals == [{"refresh_token": "r1", "version": 1}]
    assert results == [{"refresh_token": "r2", "version": 2}] * 4
    assert DatabaseCredentialStore(connection_id).get() == {"refresh_token": "r2", "version": 2}
    stored = db.session.execute(text("SELECT credentials FROM connections")).scalar_one()
    assert '"r2"' not in stored and "refresh_token" not in stored  # encrypted at rest (no quotes in base64)
