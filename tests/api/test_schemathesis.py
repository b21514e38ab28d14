"""Property-based API testing: schemathesis generates requests from /openapi.json.

No generated request, valid or not, may cause a 5xx; every response, errors included,
must match the schema (status declared, problem+json for errors).
Writes go to a throw-away workspace.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.core.parameters import ParameterLocation  # noqa: E402
from schemathesis.generation import GenerationMode  # noqa: E402
from schemathesis.specs.openapi.checks import positive_data_acceptance  # noqa: E402

from api import create_app  # noqa: E402
from gridkit.store import issue_key, open_store  # noqa: E402
from tests.api.test_writes import field_workspace  # noqa: E402

_WS, _KEYS = field_workspace(Path(tempfile.mkdtemp(prefix="gridkit-st-")) / "ws.gpkg")
_ADMIN = issue_key(open_store(_WS), "fuzz-admin", role="admin", worker_id="A1")[0]
APP = create_app(workspace=_WS)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


def _auth(case) -> dict[str, str]:
    """The admin key, unless the case leaves the key out on purpose (a negative header
    case: putting the key back would make a request schemathesis calls invalid valid,
    and its acceptance a false 'schema-violating request accepted')."""
    header = case.meta.components.get(ParameterLocation.HEADER) if case.meta else None
    left_out = header is not None and header.mode == GenerationMode.NEGATIVE
    return {} if left_out and "X-API-Key" not in (case.headers or {}) else {"X-API-Key": _ADMIN}


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_api_never_fails_and_follows_its_schema(case) -> None:
    auth = _auth(case)  # explicit: schemathesis also probes without it
    response = case.call(headers=auth)
    assert response.status_code < 500, response.text
    # errors too: every 4xx is a declared problem+json. Not checked: that every
    # schema-valid request is accepted; a bbox whose south edge lies north of its
    # north edge matches the declared pattern and is still a 400.
    case.validate_response(response, headers=auth, excluded_checks=[positive_data_acceptance])
