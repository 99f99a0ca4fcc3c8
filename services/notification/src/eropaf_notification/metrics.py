"""The notification service's own metrics (beside the platform's)."""

from prometheus_client import Counter, Histogram

NOTIFICATIONS = Counter(
    "eropaf_notifications_total",
    "Messages by what became of them: queued (owed), sent, retried, failed, skipped",
    ["service", "channel", "status"],
)
SEND_SECONDS = Histogram(
    "eropaf_notification_send_seconds",
    "Time to render and hand over one message",
    ["service", "channel"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
