"""Prometheus metrics every service exports on /metrics (labelled by service)."""

from prometheus_client import Counter, Gauge, Histogram

MESSAGES_IN = Counter("eropaf_messages_in_total", "Messages consumed", ["service", "topic"])
MESSAGES_OUT = Counter(
    "eropaf_messages_out_total", "Messages published by the outbox relay", ["service", "topic"]
)
DUPLICATES = Counter(
    "eropaf_messages_duplicate_total", "Redelivered messages dropped", ["service", "topic"]
)
SKIPPED = Counter(
    "eropaf_messages_skipped_total",
    "Messages of types the consumer does not handle, skipped without a transaction",
    ["service", "consumer"],
)
FAILURES = Counter("eropaf_handler_failures_total", "Handler failures by kind", ["service", "kind"])
DLQ = Counter("eropaf_dlq_total", "Messages sent to a dead-letter topic", ["service", "topic"])
HANDLER_SECONDS = Histogram(
    "eropaf_handler_seconds", "Time to process one consumed batch", ["service", "consumer"]
)
OUTBOX_BACKLOG = Gauge("eropaf_outbox_backlog", "Unpublished outbox rows", ["service"])
CONSUMER_LAG = Gauge(
    "eropaf_consumer_lag", "Messages behind the high watermark", ["service", "topic", "partition"]
)
# A full pass visits every tracked object: a service that holds much in memory (matching's
# linking state) shows here whether it is kept out of the passes.
GC_PAUSE_SECONDS = Histogram(
    "eropaf_gc_pause_seconds",
    "Pauses of Python's cyclic garbage collector, by generation collected",
    ["service", "generation"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
