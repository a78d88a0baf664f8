"""A small client for the Prometheus HTTP API (``/api/v1/query`` and ``/api/v1/query_range``), as
Prometheus, Thanos, Mimir and VictoriaMetrics answer it.

Every failure is a :class:`PrometheusError` that says whether retrying can help: a refused
connection, a timeout, a 5xx or a 429 can (``retryable``); a query Prometheus rejects as bad
(400 ``bad_data``, 422 ``execution``) cannot. Secrets never appear in an error's text.

>>> PrometheusClient.parse_vector({"status": "success", "data": {"resultType": "vector", "result": [
...     {"metric": {"service": "api"}, "value": [1700000000.5, "0.25"]}]}})
[Sample(labels={'service': 'api'}, at=1700000000.5, value=0.25)]
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np

from watchkeeper.errors import IntegrationError
from watchkeeper.watch.config import PrometheusEndpoint

FloatArray = np.ndarray[Any, np.dtype[np.float64]]
#: Prometheus refuses a range query of more than 11,000 points per series.
MAX_POINTS = 11_000


class PrometheusError(IntegrationError):
    """Prometheus could not answer; ``retryable`` says whether asking again can help."""


@dataclass(frozen=True, slots=True)
class Sample:
    """One series' value at one instant (an instant-vector element)."""

    labels: Mapping[str, str]
    at: float
    value: float


@dataclass(frozen=True, slots=True)
class RangeSeries:
    """One series over a range (a range-vector / matrix element), times in unix seconds."""

    labels: Mapping[str, str]
    times: FloatArray
    values: FloatArray


def _float(text: Any) -> float:
    """Prometheus sends values as strings, including ``NaN``, ``+Inf`` and ``-Inf``."""
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


class PrometheusClient:
    """Queries one endpoint. ``client`` may be given (tests, shared pools); it is then not closed."""

    def __init__(self, endpoint: PrometheusEndpoint, client: httpx.Client | None = None) -> None:
        self.endpoint = endpoint
        self._own = client is None
        auth: httpx.Auth | None = None
        headers = {"Accept": "application/json"}
        if endpoint.bearer_token is not None:
            headers["Authorization"] = f"Bearer {endpoint.bearer_token.get_secret_value()}"
        if endpoint.basic_auth is not None:
            auth = httpx.BasicAuth(endpoint.basic_auth.username, endpoint.basic_auth.password.get_secret_value())
        self._headers, self._auth = headers, auth
        self._client = client or httpx.Client(
            timeout=httpx.Timeout(endpoint.timeout, connect=min(endpoint.timeout, 5.0)),
            verify=endpoint.tls_verify, trust_env=False,
        )

    def close(self) -> None:
        if self._own:
            self._client.close()

    def __enter__(self) -> PrometheusClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- the two calls -------------------------------------------------------------------------
    def query(self, promql: str, at: float | None = None) -> list[Sample]:
        """The instant vector of ``promql`` at ``at`` (unix seconds; default: now). A scalar
        result comes back as one sample without labels."""
        params: dict[str, str] = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        return self.parse_vector(self._get("/api/v1/query", params))

    def query_range(self, promql: str, start: float, end: float, step: float) -> list[RangeSeries]:
        """The series of ``promql`` from ``start`` to ``end`` every ``step`` seconds (the step is
        raised so that no series exceeds Prometheus' 11,000 points)."""
        if not end >= start:
            raise ValueError(f"end ({end}) is before start ({start})")
        step = max(step, (end - start) / (MAX_POINTS - 1), 0.001)
        params = {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:.3f}"}
        return self.parse_matrix(self._get("/api/v1/query_range", params))

    # -- wire format -----------------------------------------------------------------------------
    def _get(self, path: str, params: Mapping[str, str]) -> dict[str, Any]:
        url = self.endpoint.url + path
        where = f"Prometheus {self.endpoint.name} ({self.endpoint.url})"
        try:
            response = self._client.get(url, params=params, headers=self._headers,
                                        auth=self._auth or httpx.USE_CLIENT_DEFAULT)
        except httpx.TimeoutException:
            raise PrometheusError(f"{where} did not answer within {self.endpoint.timeout:g} s",
                                  retryable=True) from None
        except httpx.HTTPError as exc:
            raise PrometheusError(f"{where} is unreachable: {type(exc).__name__}", retryable=True) from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            retry = response.status_code >= 500 or response.status_code == 429
            raise PrometheusError(f"{where} answered HTTP {response.status_code} without a JSON body",
                                  retryable=retry)
        if body.get("status") != "success":
            kind, text = body.get("errorType", "error"), str(body.get("error", ""))[:300]
            retry = response.status_code >= 500 or response.status_code == 429 or kind in ("timeout", "unavailable")
            raise PrometheusError(f"{where} answered HTTP {response.status_code} {kind}: {text}", retryable=retry)
        return body

    @staticmethod
    def parse_vector(body: Mapping[str, Any]) -> list[Sample]:
        data = body.get("data") or {}
        kind, result = data.get("resultType"), data.get("result")
        if kind == "scalar" and isinstance(result, list) and len(result) == 2:
            return [Sample({}, float(result[0]), _float(result[1]))]
        if kind != "vector" or not isinstance(result, list):
            raise PrometheusError(f"expected an instant vector, got {kind!r}", retryable=False)
        out = []
        for item in result:
            at, value = item["value"]
            out.append(Sample({str(k): str(v) for k, v in item.get("metric", {}).items()}, float(at), _float(value)))
        return out

    @staticmethod
    def parse_matrix(body: Mapping[str, Any]) -> list[RangeSeries]:
        data = body.get("data") or {}
        kind, result = data.get("resultType"), data.get("result")
        if kind != "matrix" or not isinstance(result, list):
            raise PrometheusError(f"expected a range vector (matrix), got {kind!r}", retryable=False)
        out = []
        for item in result:
            points = item.get("values", [])
            times = np.fromiter((float(p[0]) for p in points), np.float64, len(points))
            values = np.fromiter((_float(p[1]) for p in points), np.float64, len(points))
            out.append(RangeSeries({str(k): str(v) for k, v in item.get("metric", {}).items()}, times, values))
        return out
