"""Observing runs: the live console, tracking, reports and the run summary."""
