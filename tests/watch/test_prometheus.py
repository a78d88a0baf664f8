from __future__ import annotations

import json

import httpx
import pytest

from watchkeeper.watch.config import BasicAuth, PrometheusEndpoint
from watchkeeper.watch.prometheus import PrometheusClient, PrometheusError


def _client(handler: object, **kw: object) -> PrometheusClient:
    endpoint = PrometheusEndpoint(url="http://prom.test:9090", **kw)  # type: ignore[arg-type]
    return PrometheusClient(endpoint, httpx.Client(transport=httpx.MockTransport(handler)))  # type: ignore[arg-type]


def test_query_range_parses_matrix_and_sends_bearer() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"status": "success", "data": {"resultType": "matrix", "result": [
            {"metric": {"service": "a"}, "values": [[10, "1"], [20, "NaN"], [30, "+Inf"]]}]}})

    c = _client(handler, bearer_token="tok")
    [series] = c.query_range("up", 10, 30, 10)
    assert series.labels == {"service": "a"}
    assert series.times.tolist() == [10.0, 20.0, 30.0]
    assert series.values[0] == 1.0 and series.values[2] == float("inf")
    assert seen[0].headers["Authorization"] == "Bearer tok"
    assert seen[0].url.params["step"] == "10.000"


def test_basic_auth_is_sent() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"status": "success", "data": {"resultType": "vector", "result": []}})

    _client(handler, basic_auth=BasicAuth(username="u", password="p")).query("up")  # type: ignore[arg-type]
    assert seen[0].headers["Authorization"].startswith("Basic ")


@pytest.mark.parametrize(
    ("status", "body", "retryable"),
    [
        (400, {"status": "error", "errorType": "bad_data", "error": "parse error"}, False),
        (503, {"status": "error", "errorType": "unavailable", "error": "busy"}, True),
        (502, "<html>bad gateway</html>", True),
        (429, "", True),
    ],
)
def test_errors_say_whether_to_retry(status: int, body: object, retryable: bool) -> None:
    def handler(_request: httpx.Request) -> httpx.Response:
        content = json.dumps(body) if isinstance(body, dict) else str(body)
        return httpx.Response(status, content=content)

    with pytest.raises(PrometheusError) as err:
        _client(handler, bearer_token="very-secret").query("up")
    assert err.value.retryable is retryable
    assert "very-secret" not in str(err.value)


def test_unreachable_is_retryable() -> None:
    endpoint = PrometheusEndpoint(url="http://127.0.0.1:1", timeout=1)  # type: ignore[arg-type]
    with PrometheusClient(endpoint) as c, pytest.raises(PrometheusError, match="unreachable") as err:
        c.query("up")
    assert err.value.retryable
