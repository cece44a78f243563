"""Property-based API testing: schemathesis generates requests from the OpenAPI schema and
no response may be a 5xx. It runs signed in as a radiologist with the CSRF token, so the
generated calls reach the handlers (small max_examples: this is a smoke run, not a soak)."""

from __future__ import annotations

from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402
from reviewkit import Seeded  # noqa: E402


@pytest.fixture(scope="module")
def signed_in(app: Any, seeded: Seeded, accounts: dict[str, str]) -> dict[str, str]:
    from sqlalchemy import select

    from radloop.review.accounts import create_session, session_user
    from radloop.review.db import User

    ctx = app.state.ctx
    with ctx.store.sessions() as session:
        user = session.execute(select(User).where(User.username == "rad")).scalar_one()
        token = create_session(session, ctx.settings, user)
        csrf = session_user(session, token)
    assert csrf is not None
    return {"Cookie": f"radloop_session={token}", "X-CSRF-Token": csrf.csrf_token}


@pytest.fixture(scope="module")
def api_schema(app: Any, signed_in: dict[str, str]) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", app, headers=signed_in)


def test_no_generated_request_gets_a_server_error(
    api_schema: Any, signed_in: dict[str, str]
) -> None:
    from hypothesis import given
    from schemathesis.checks import not_a_server_error

    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 15
    statuses: list[int] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=6,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            response = case.call_and_validate(headers=signed_in, checks=[not_a_server_error])
            statuses.append(response.status_code)

        run()
    # The generated calls got through authentication and CSRF to the handlers.
    assert 401 not in statuses, sorted(statuses)
    assert sum(200 <= s < 300 for s in statuses) >= 5, sorted(statuses)
