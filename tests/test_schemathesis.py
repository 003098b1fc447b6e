"""Schemathesis over ``/openapi.json`` of a live server, with a bounded number of examples per
operation: no 5xx, and every error body has the one JSON shape."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.live_api import make_runtime, serve

EXAMPLES = 12  # per operation; about 10 operations, well under a minute on 2 cores
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                    suppress_health_check=list(HealthCheck))


def check_response(response: Any, label: str) -> None:
    assert response.status_code < 500, f"{label}: {response.status_code} {response.text[:300]}"
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error"}, f"{label}: {body}"
        assert set(body["error"]) == {"type", "message"}, f"{label}: {body}"
        assert isinstance(body["error"]["message"], str) and body["error"]["message"]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    plain_server, plain_app = serve(make_runtime(tmp_path_factory.mktemp("st-plain")))
    tools_server, tools_app = serve(make_runtime(tmp_path_factory.mktemp("st-tools"), tools=True))
    for app in (plain_app, tools_app):  # /readyz answers 200 once the models are loaded
        _ = app.state.runtime.router
    plain_key, _ = plain_app.state.keys.create("fuzz", "admin")
    tools_key, _ = tools_app.state.keys.create("fuzz", "tools")
    yield {"plain": (plain_server.url, plain_key), "tools": (tools_server.url, tools_key),
           "tool_names": tools_app.state.runtime.registry.names()}
    plain_server.stop()
    tools_server.stop()


OPERATIONS = ["health", "ready", "metrics", "create_upload", "chat", "get_conversation", "list_tools", "call_tool",
              "list_models", "create_chat_completion",
              "usage", "audit_log",  # issue 8: metering and the audit log
              "list_lti_platforms", "create_lti_platform", "get_lti_platform", "delete_lti_platform",
              "lti_config"]  # issue 17: LTI platform registration


def _operations(url: str) -> dict[str, Any]:
    schema = schemathesis.openapi.from_url(url + "/openapi.json")
    return {op.definition.raw["operationId"]: op for op in (r.ok() for r in schema.get_all_operations())}


@pytest.fixture(scope="module")
def operations(servers: dict[str, Any]) -> dict[str, Any]:
    return _operations(servers["plain"][0])


def test_every_operation_has_an_explicit_id(operations: dict[str, Any]) -> None:
    assert sorted(operations) == sorted(OPERATIONS)


@pytest.mark.parametrize("operation_id", OPERATIONS)
def test_fuzzed_requests_never_get_a_5xx_and_errors_have_one_shape(
        servers: dict[str, Any], operations: dict[str, Any], operation_id: str) -> None:
    url, key = servers["plain"]
    auth = {"Authorization": f"Bearer {key}"}

    @SETTINGS
    @given(case=operations[operation_id].as_strategy())
    def run(case: Any) -> None:
        response = case.call(base_url=url, headers=auth, timeout=30)
        check_response(response, f"{operation_id} {case.method} {case.formatted_path}")

    run()


def test_fuzzed_tool_arguments_are_validated_not_crashed(servers: dict[str, Any]) -> None:
    url, key = servers["tools"]
    operation = _operations(url)["call_tool"]

    @SETTINGS
    @given(case=operation.as_strategy(), name=st.sampled_from(servers["tool_names"]))
    def run(case: Any, name: str) -> None:
        case.path_parameters = {"name": name}
        response = case.call(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
        check_response(response, f"call_tool {name} {case.body!r:.200}")
        assert response.status_code in (200, 404, 422), response.text

    run()
