import json

import pytest

from eropaf_platform import asyncapi

pytestmark = pytest.mark.unit


def test_committed_documents_match_the_code() -> None:
    assert asyncapi.main([]) == 0, "run: python -m eropaf_platform.asyncapi --write"


def test_every_committed_document_has_a_registered_service() -> None:
    # Services register their channels under the `eropaf.asyncapi` entry points; a document
    # without one would no longer be checked against the code.
    committed = {path.stem for path in asyncapi.DOCS_DIR.glob("*.json")}
    assert committed
    assert committed <= set(asyncapi.registered())


def test_intake_document_describes_the_partner_contract() -> None:
    doc = json.loads(asyncapi.render("intake"))
    assert doc["asyncapi"] == "3.0.0"
    signals = doc["channels"]["arrears_signals_code"]
    assert signals["address"] == "arrears.signals.{code}"
    submitted = doc["components"]["messages"]["SignalSubmitted"]
    assert "ce_signature" in submitted["headers"]["required"]
    assert submitted["payload"]["properties"]["ID"]["type"] == "string"
    # internal events are wrapped in the shared envelope with their type pinned
    accepted = doc["components"]["messages"]["SignalAccepted"]["payload"]
    assert accepted["properties"]["type"] == {"const": "eropaf.intake.signal.accepted"}
    assert set(accepted["properties"]) >= {"id", "key", "correlation_id", "causation_id", "data"}
    operations = {op["action"] for op in doc["operations"].values()}
    assert operations == {"send", "receive"}


def test_a_changed_model_makes_the_committed_document_stale(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(asyncapi, "DOCS_DIR", tmp_path)
    assert asyncapi.main(["--write"]) == 0
    assert asyncapi.main([]) == 0
    path = tmp_path / "intake.json"
    path.write_text(path.read_text().replace('"signal_ref"', '"signal_reference"'))
    assert asyncapi.main([]) == 1
