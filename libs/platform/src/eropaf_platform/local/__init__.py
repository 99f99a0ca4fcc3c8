"""Embedded stand-ins for the infrastructure `eropaf up` needs on one machine.

A Kafka-compatible broker (Tansu), an embedded PostgreSQL and an SMTP sink; each
instance owns its own ports and directories so two stacks never collide.
"""

from .broker import LocalBroker, create_topics
from .ports import free_port
from .postgres import EmbeddedPostgres
from .smtp import MailSink

__all__ = ["EmbeddedPostgres", "LocalBroker", "MailSink", "create_topics", "free_port"]
