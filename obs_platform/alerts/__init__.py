"""Alerts: rules over the pipeline events, their lifecycle in SQLite, and webhook routing (issue 12, part 2)."""
