"""schemathesis against our own OpenAPI document: no input, however odd, gets a 5xx, and
every response's body matches what the document says for its status."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from service import create_app

pytestmark = pytest.mark.slow


# The document is the same for every configuration: load it once from an app that never
# touches its database or Redis; each test then points the schema at the fixture's real app.
schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", create_app({
    "TESTING": True, "DATABASE_URL": "sqlite://", "REDIS_URL": "redis://127.0.0.1:1/0"}))


@pytest.fixture
def fuzz_token(app, make_moderator, post_comment, run_worker) -> str:
    """Some data to find (a decided comment), no limits, and an admin's token."""
    app.config.update(RATE_LIMIT_PER_IP="", RATE_LIMIT_PER_POST="", FLOOD_SECONDS=0)
    post_comment(content="A genuine remark about export controls.")
    run_worker()
    return str(make_moderator(name="fuzz", role="admin"))


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck),
          derandomize=True)
def test_no_server_errors_and_documented_bodies(case, app, fuzz_token) -> None:
    case.call_and_validate(session=app.test_client(),
                           headers={"Authorization": f"Bearer {fuzz_token}"},
                           checks=[not_a_server_error, response_schema_conformance])
