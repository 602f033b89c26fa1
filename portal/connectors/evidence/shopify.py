"""Filled in when the shopify connector is rebuilt on its documented API (issue 17)."""

EVIDENCE = ()
