"""Operators' view: Prometheus metrics at /metrics (behind METRICS_TOKEN), see collector.py."""
