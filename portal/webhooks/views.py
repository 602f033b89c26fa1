"""POST /webhooks/<source>/<token>: a source's webhook delivery. Thin: find the source link by the token in
its delivery URL, verify the signature on the raw body with its source's verify_webhook (portal.sources,
before anything parses it), store the raw event, answer 200. A wrong signature is refused with 401 and
nothing is stored; a delivery naming another shop than the source link's (Source.webhook_account) with
403; WooCommerce's unsigned creation ping gets 200 and is not stored. A delivery id stored before (a
replay) is answered 200 again."""

from flask import Blueprint, abort, jsonify, request
from sqlalchemy import select

from portal.connectors.sources import WebhookRejected
from portal.extensions import csrf, db
from portal.models import SourceLink
from portal.pipeline.intake import record_event
from portal.pipeline.source_links import signing_secret, webhook_shop
from portal.sources import get_source

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")


@bp.post("/<source>/<token>")
@csrf.exempt
def receive(source: str, token: str):
    source_link = db.session.scalar(select(SourceLink).where(SourceLink.webhook_token == token))
    if source_link is None or source_link.source_system != source:
        abort(404)
    try:
        sales_source = get_source(source)
    except LookupError:
        abort(404)
    raw_body = request.get_data(cache=False)
    secret = signing_secret(source_link)
    try:
        delivery = sales_source.verify_webhook(dict(request.headers), raw_body, secret)
    except WebhookRejected as exc:
        return jsonify({"message": f"Webhook rejected: {exc}"}), 401
    expected_shop = webhook_shop(source_link)
    if expected_shop is not None and delivery.shop != expected_shop:
        # Signed by the app, but for another shop: not this source link's order, nothing is stored.
        message = f"Webhook rejected: it comes from {delivery.shop}, not from this source link's shop"
        return jsonify({"message": message}), 403
    if delivery.is_ping:
        return jsonify({"message": "ok"}), 200
    event = record_event(
        source_link, "webhook", delivery.delivery_id, delivery.topic, delivery.resource_id, raw_body
    )
    return jsonify({"message": "stored" if event is not None else "already received"}), 200
