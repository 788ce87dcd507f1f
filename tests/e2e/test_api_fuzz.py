"""The API under generated input: schemathesis reads GET /openapi.json from local mode and
sends what the document allows (and what it does not), over HTTP. No answer may be a 5xx.

Bounded: a fixed number of examples per operation and mode, no shrinking past a deadline.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

from tests.support.local_mode import LocalMode, local_mode_running

EXAMPLES_PER_OPERATION = 15


@pytest.fixture(scope="module")
def fuzzed_local_mode() -> Iterator[LocalMode]:
    with local_mode_running(clean_log=True) as local:
        yield local


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_no_generated_request_gets_a_server_error(fuzzed_local_mode: LocalMode, mode: str) -> None:
    import schemathesis
    from schemathesis.generation import GenerationMode

    local = fuzzed_local_mode
    schema = schemathesis.openapi.from_url(f"{local.url}/openapi.json")
    generation = GenerationMode.POSITIVE if mode == "positive" else GenerationMode.NEGATIVE
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    for operation in operations:
        strategy = operation.as_strategy(generation_mode=generation)

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy, authenticated=st.booleans())
        def call(case: object, authenticated: bool) -> None:
            headers = {"X-API-Token": local.token} if authenticated else {}
            response = case.call(base_url=local.url, headers=headers, timeout=30)  # type: ignore[attr-defined]
            statuses[response.status_code] += 1
            if response.status_code >= 500:
                failures.append(
                    f"{case.operation.label}: {response.status_code} for "  # type: ignore[attr-defined]
                    f"{case.as_curl_command()}\n{response.text[:500]}"  # type: ignore[attr-defined]
                )

        try:
            call()
        except Unsatisfiable:
            continue  # nothing invalid can be said to an operation without inputs
    assert not failures, "\n\n".join(failures[:5])
    # The run did reach the API, with and without a valid token, and got both answers.
    assert sum(statuses.values()) >= 10 * len(operations)
    assert statuses[401] > 0
    assert any(200 <= code < 300 for code in statuses) or mode == "negative"
    assert any(code in (400, 404, 422) for code in statuses)
