"""AsyncAPI 3.0 documents generated from code.

Each service declares the channels it receives from and sends to, with the pydantic models
of their messages (`Channel`). The document is built from those declarations and the models'
JSON Schemas, so it cannot drift from the code; a test compares it with the committed copy in
``docs/asyncapi/`` and the contracts' snapshot guard makes a schema change demand a version bump.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from eropaf_contracts.envelope import Envelope

ASYNCAPI_VERSION = "3.0.0"
DOCS_DIR = Path(__file__).resolve().parents[4] / "docs" / "asyncapi"
# module:function returning the service's channels; the order is the document order.
SERVICES = {
    "intake": "eropaf_intake.channels:CHANNELS",
    "matching": "eropaf_matching.channels:CHANNELS",
    "scheduling": "eropaf_scheduling.channels:CHANNELS",
}


@dataclass(frozen=True)
class Message:
    name: str
    model: type[BaseModel]
    summary: str
    enveloped: bool = True  # internal events travel in the shared Envelope
    headers: dict[str, Any] | None = None  # JSON Schema of the Kafka headers


@dataclass(frozen=True)
class Channel:
    address: str
    action: Literal["receive", "send"]
    description: str
    messages: tuple[Message, ...]
    key: str = ""
    parameters: dict[str, str] = field(default_factory=dict)


def _payload_schema(message: Message) -> dict[str, Any]:
    data = message.model.model_json_schema(by_alias=True, mode="serialization")
    if not message.enveloped:
        return data
    envelope = Envelope.model_json_schema(mode="serialization")
    envelope["properties"]["data"] = data
    envelope["properties"]["type"] = {"const": getattr(message.model, "EVENT_TYPE", "")}
    envelope["properties"]["version"] = {"const": getattr(message.model, "VERSION", 1)}
    envelope["title"] = f"Envelope[{message.name}]"
    return envelope


def document(service: str, channels: list[Channel], version: str = "1") -> dict[str, Any]:
    doc: dict[str, Any] = {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": f"Eropaf {service}",
            "version": version,
            "description": f"Kafka channels of the Eropaf {service} service (generated from code).",
        },
        "defaultContentType": "application/json",
        "channels": {},
        "operations": {},
        "components": {"messages": {}},
    }
    for channel in channels:
        channel_id = channel.address.replace(".", "_").replace("{", "").replace("}", "")
        messages: dict[str, Any] = {}
        for message in channel.messages:
            component: dict[str, Any] = {
                "name": message.name,
                "summary": message.summary,
                "contentType": "application/json",
                "payload": _payload_schema(message),
            }
            if message.headers:
                component["headers"] = message.headers
            if channel.key:
                component["bindings"] = {
                    "kafka": {"key": {"type": "string", "description": channel.key}}
                }
            doc["components"]["messages"][message.name] = component
            messages[message.name] = {"$ref": f"#/components/messages/{message.name}"}
        entry: dict[str, Any] = {
            "address": channel.address,
            "description": channel.description,
            "messages": messages,
        }
        if channel.parameters:
            entry["parameters"] = {k: {"description": v} for k, v in channel.parameters.items()}
        doc["channels"][channel_id] = entry
        doc["operations"][f"{channel.action}_{channel_id}"] = {
            "action": channel.action,
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "messages": [{"$ref": f"#/channels/{channel_id}/messages/{m}"} for m in messages],
        }
    return doc


def render(service: str) -> str:
    module_name, _, attr = SERVICES[service].partition(":")
    channels = getattr(importlib.import_module(module_name), attr)
    return json.dumps(document(service, list(channels)), indent=2, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate the services' AsyncAPI documents.")
    parser.add_argument("--write", action="store_true", help=f"write them to {DOCS_DIR}")
    args = parser.parse_args(argv)
    stale = []
    for service in SERVICES:
        try:
            text = render(service)
        except ModuleNotFoundError:
            continue
        path = DOCS_DIR / f"{service}.json"
        if args.write:
            DOCS_DIR.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        elif not path.exists() or path.read_text() != text:
            stale.append(str(path))
    if stale:
        print("out of date (run python -m eropaf_platform.asyncapi --write):", *stale, sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
