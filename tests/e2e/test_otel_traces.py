"""A real sender: the OpenTelemetry SDK (``opentelemetry-sdk`` + ``opentelemetry-exporter-otlp-proto-http``)
exports the spans of a small instrumented call chain (frontend → checkout → payment) to a running
``watchkeeper serve`` on 127.0.0.1, protobuf and gzip as the exporter sends them; then the topology
shows the edges seen in traces and RED rows exist (polled with a deadline; nothing is timed)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from e2e.servers import Server, Servers, free_port, http, wait_until, watchkeeper_command


def _tracers(url: str, token: str) -> tuple[list[TracerProvider], dict[str, Tracer]]:
    providers, tracers = [], {}
    for name in ("frontend", "checkout", "payment"):
        exporter = OTLPSpanExporter(endpoint=f"{url}/v1/traces", headers={"Authorization": f"Bearer {token}"},
                                    compression=Compression.Gzip, timeout=10)
        provider = TracerProvider(resource=Resource.create({"service.name": name}))
        provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=200))
        providers.append(provider)
        tracers[name] = provider.get_tracer("watchkeeper-e2e")
    return providers, tracers


def _request(tracers: dict[str, Tracer], n: int) -> None:
    """One instrumented request: frontend calls checkout, which calls payment (every 5th fails)."""
    with tracers["frontend"].start_as_current_span("GET /checkout", kind=SpanKind.SERVER), \
            tracers["frontend"].start_as_current_span("POST checkout", kind=SpanKind.CLIENT), \
            tracers["checkout"].start_as_current_span("POST /checkout", kind=SpanKind.SERVER), \
            tracers["checkout"].start_as_current_span("POST payment", kind=SpanKind.CLIENT), \
            tracers["payment"].start_as_current_span("POST /charge", kind=SpanKind.SERVER) as charge:
        if n % 5 == 0:
            charge.set_status(Status(StatusCode.ERROR, "card declined"))


def test_the_opentelemetry_sdk_exports_to_serve(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "watchkeeper.yaml"
    config.write_text(yaml.safe_dump({
        "database_url": f"sqlite:///{tmp_path / 'watchkeeper.db'}",
        "port": port,
        "topology": {"services": {"frontend": {"depends_on": ["checkout"]}}},
        "traces": {"step_s": 2, "lateness_s": 1},
    }))
    command = watchkeeper_command()
    wk = Server("watchkeeper", [str(command), "--config", str(config), "serve"], tmp_path / "wk", port,
                ready_path="/healthz")

    def token(role: str) -> str:
        done = subprocess.run([str(command), "--config", str(config), "token", "create", "--role", role],
                              capture_output=True, timeout=60, check=True, env=wk.env)
        return done.stdout.decode().strip().splitlines()[-1]

    ingest, viewer = token("ingest"), token("viewer")
    with Servers() as servers:
        servers.start(wk)
        providers, tracers = _tracers(wk.url, ingest)
        try:
            for n in range(40):
                _request(tracers, n)
            for provider in providers:
                assert provider.force_flush(30_000)  # the exporter got 200s
        finally:
            for provider in providers:
                provider.shutdown()
        headers = {"Authorization": f"Bearer {viewer}"}
        with http() as client:
            def edges() -> dict[tuple[str, str], Any] | None:
                doc = client.get(f"{wk.url}/api/v1/topology", headers=headers).json()
                found = {(e["source"], e["target"]): e for e in doc["edges"]}
                return found if ("checkout", "payment") in found else None

            found = wait_until(edges, what="the topology shows the edges seen in traces", servers=servers)
            assert found["checkout", "payment"]["sources"] == ["traces"]
            assert found["checkout", "payment"]["calls"] == 40
            assert found["frontend", "checkout"]["sources"] == ["settings", "traces"]

            def red() -> list[dict[str, Any]] | None:
                rows = client.get(f"{wk.url}/api/v1/traces/red", headers=headers,
                                  params={"service": "payment"}).json()
                return rows if sum(r["count"] for r in rows if r["scope"] == "service") == 40 else None

            rows = wait_until(red, what="RED rows of payment", servers=servers)
            served = [r for r in rows if r["scope"] == "service"]
            assert sum(r["errors"] for r in served) == 8
            assert all(r["p95"] is not None and r["p95"] > 0 for r in served)
            assert {r["name"] for r in rows if r["scope"] == "edge"} == {"checkout->payment"}
