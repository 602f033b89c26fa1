"""Inbound webhooks from the sending systems (webshops)."""
