"""Embedded stand-ins for the infrastructure `eropaf up` needs on one machine.

A Kafka-compatible broker (Tansu), an embedded PostgreSQL and an SMTP sink; each
instance owns its own ports and directories so two stacks never collide. Their packages are
the extra ``eropaf-platform[local]``, which a deployed image does not install: the names below
load on first use, so ``eropaf_platform.local.process`` (standard library only) works without it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .broker import LocalBroker, create_topics
    from .ports import free_port
    from .postgres import EmbeddedPostgres
    from .smtp import MailSink

__all__ = ["EmbeddedPostgres", "LocalBroker", "MailSink", "create_topics", "free_port"]

_WHERE = {
    "LocalBroker": "broker",
    "create_topics": "broker",
    "free_port": "ports",
    "EmbeddedPostgres": "postgres",
    "MailSink": "smtp",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
