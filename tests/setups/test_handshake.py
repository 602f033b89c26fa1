"""A callback is only taken from the browser that started the attempt, once: Dinero's `state` (and PKCE), and
e-conomic's nonce in the redirect URL. Refused callbacks connect nothing and say so in Danish."""

from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from portal.models import Connection, SandboxRecord
from portal.setups import handshake
from tests.setups.test_wizard import consent

ANSWER = {"e-conomic": {"agreement": "demo", "action": "accept"}, "dinero": {"answer": "accept"}}
FOREIGN = "hører ikke til den forbindelse"
USED = "allerede brugt eller er for gammelt"


def start(client, system_key):
    """Start connecting and accept on the sandbox's consent page: our callback path with its query."""
    started = client.get(f"/setup/connect/{system_key}?sandbox=1")
    assert started.status_code == 302
    return started.headers["Location"], consent(client, started.headers["Location"], ANSWER[system_key])


def refused(client, url, text):
    page = client.get(url, follow_redirects=True).get_data(as_text=True)
    assert text in page, page


def with_param(callback, name, value):
    path, _, query = callback.partition("?")
    params = {k: v[0] for k, v in parse_qs(query).items()}
    if value is None:
        params.pop(name)
    else:
        params[name] = value
    return f"{path}?{'&'.join(f'{k}={v}' for k, v in params.items())}"


def connections(db):
    db.session.expire_all()
    return db.session.scalars(select(Connection)).all()


@pytest.mark.parametrize(
    ("system_key", "value_name"), [("dinero", "state"), ("e-conomic", "nonce")], ids=["dinero", "e-conomic"]
)
@pytest.mark.parametrize("tamper", ["missing", "wrong"])
def test_a_callback_without_its_value_or_with_another_connects_nothing(
    owner_client, owner, db, system_key, value_name, tamper
):
    _, callback = start(owner_client, system_key)
    assert f"{value_name}=" in callback
    forged = with_param(callback, value_name, None if tamper == "missing" else "forged-value")
    refused(owner_client, forged, FOREIGN)
    assert connections(db) == []
    # The attempt is used up: its own genuine callback is refused too, and nothing is connected.
    refused(owner_client, callback, "ikke startet fra denne browsersession")
    assert connections(db) == []


@pytest.mark.parametrize("system_key", ["dinero", "e-conomic"])
def test_the_real_flow_connects_once_and_a_replay_with_the_old_session_is_refused(
    owner_client, owner, db, system_key
):
    _, callback = start(owner_client, system_key)
    with owner_client.session_transaction() as session:
        old_pending = dict(session[handshake.PENDING])
    done = owner_client.get(callback)
    assert done.status_code == 302 and done.headers["Location"].startswith("/setup/connections/")
    assert len(connections(db)) == 1

    # The same callback again, with the session cookie as it was before (a replay): Redis gave it out once.
    with owner_client.session_transaction() as session:
        session[handshake.PENDING] = old_pending
    refused(owner_client, callback, USED)
    assert len(connections(db)) == 1


def test_economic_gets_a_one_time_nonce_in_its_redirect_url(owner_client, owner, redis):
    location, _ = start(owner_client, "e-conomic")
    redirect_url = parse_qs(urlsplit(location).query)["redirectUrl"][0]
    nonce = parse_qs(urlsplit(redirect_url).query)["nonce"][0]
    assert len(nonce) >= 40
    assert 0 < redis.ttl(f"bogbro:connect-attempt:{nonce}") <= handshake.TTL_SECONDS


def test_an_expired_attempt_is_refused(owner_client, owner, db, redis):
    _, callback = start(owner_client, "e-conomic")
    for key in redis.scan_iter("bogbro:connect-attempt:*"):
        redis.delete(key)  # as ten minutes passing would
    refused(owner_client, callback, USED)
    assert connections(db) == []


def test_dinero_is_connected_with_pkce(owner_client, owner, db):
    location, callback = start(owner_client, "dinero")
    query = parse_qs(urlsplit(location).query)
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    code = parse_qs(urlsplit(callback).query)["code"][0]
    stored = db.session.scalar(
        select(SandboxRecord).where(SandboxRecord.collection == "codes", SandboxRecord.key == code)
    )
    assert stored.document["CodeChallenge"] == query["code_challenge"][0]
    assert owner_client.get(callback).status_code == 302
    assert [c.system for c in connections(db)] == ["dinero"]  # the verifier matched: tokens were issued
