"""Prometheus metrics: in-process event counters, database-read state gauges, the exposition."""
