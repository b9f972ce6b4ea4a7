"""Schemathesis over the service's OpenAPI spec, against a real server: no 5xx for anything a client can
send, every status code documented, every response matching the schema of its status code, and
schema-violating requests rejected.

Not checked: "schema-valid requests are accepted". The service has rules JSON Schema cannot state (limits
answered 413, a chat must end with the assistant's message, OpenRLHF's prompts as long as query, a reload path
that must exist): the spec states them in the fields' descriptions (test_wiring.py checks), and a schema-valid
body can rightly get 413/422.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from rewardkit.serve import ServeSettings, create_app

# The spec comes from the app itself (building the app loads no model); the cases run over HTTP.
schema = schemathesis.openapi.from_dict(create_app(ServeSettings(api_keys=[])).openapi())


@schema.exclude(path="/admin/reload").parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case, server_url: str) -> None:  # type: ignore[no-untyped-def]
    case.call_and_validate(base_url=server_url, timeout=30, excluded_checks=[positive_data_acceptance])
