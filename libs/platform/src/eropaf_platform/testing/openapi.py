"""Any service's HTTP API against its own OpenAPI document (schemathesis), for tests.

Cases the document allows and cases it does not, under several ways of authenticating
("modes", e.g. the right token, none, another's); every answer must be no 5xx, documented,
and shaped as documented; the caller says what else each mode must give (401, 403, ...).
Deterministic (derandomised hypothesis), for CI.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import checks
from schemathesis.core.result import Ok

__all__ = ["CHECKS", "fuzz_openapi"]

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]
MAX_URL = 8 * 1024  # longer request lines are dropped by the HTTP server (h11), not the app

# prepare(case, mode) -> headers to send (it may also edit the case, e.g. a path parameter);
# expect(case, mode, status) asserts what the mode must give beyond the document's checks.
Prepare = Callable[[schemathesis.Case, str], dict[str, str]]
Expect = Callable[[schemathesis.Case, str, int], None]


def fuzz_openapi(
    base_url: str,
    *,
    modes: Sequence[str],
    prepare: Prepare,
    expect: Expect,
    examples_per_operation: int = 60,
    skip_prefixes: Sequence[str] = ("/health", "/metrics"),
) -> dict[str, int]:
    """Run every operation of ``{base_url}/openapi.json`` (except ``skip_prefixes``); returns
    the cases tried per operation."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    tried: dict[str, int] = {}
    for result in schema.get_all_operations():
        if not isinstance(result, Ok):
            raise AssertionError(f"the OpenAPI document has an unusable operation: {result}")
        operation = result.ok()
        if operation.path.startswith(tuple(skip_prefixes)):
            continue
        tried[operation.label] = _fuzz_operation(
            operation, base_url, modes, prepare, expect, examples_per_operation
        )
    return tried


def _fuzz_operation(
    operation: Any,
    base_url: str,
    modes: Sequence[str],
    prepare: Prepare,
    expect: Expect,
    examples: int,
) -> int:
    tried = 0
    cases = st.one_of(
        operation.as_strategy(),  # what the document allows
        operation.as_strategy(schemathesis.GenerationMode.NEGATIVE),  # and what it does not
    )

    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases, mode=st.sampled_from(list(modes)))
    def check(case: schemathesis.Case, mode: str) -> None:
        nonlocal tried
        tried += 1
        headers = prepare(case, mode)
        try:
            response = case.call(base_url=base_url, headers=headers)
        except requests.ConnectionError:
            assert len(case.formatted_path) + len(str(case.query)) > MAX_URL, case
            return
        case.validate_response(response, checks=CHECKS)
        expect(case, mode, response.status_code)

    check()
    return tried
