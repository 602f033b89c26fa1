"""Filled in when the dynaccount connector is rebuilt on its documented API (issue 17)."""

EVIDENCE = ()
