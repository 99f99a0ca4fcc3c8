"""What matching reads from scheduling on ``VISITS_TOPIC`` (the contracts' payloads)."""

from __future__ import annotations

from eropaf_contracts.events import CaseOutcomeRecorded, ContactAttemptRecorded, OutreachPlanned

__all__ = ["CaseOutcomeRecorded", "ContactAttemptRecorded", "OutreachPlanned"]
