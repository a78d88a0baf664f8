"""Write ``sdk_export.pb`` and ``sdk_export.json``: one export of the OpenTelemetry SDK (a small call chain,
frontend → checkout → payment, one 502 and one failed charge), as protobuf and in the OTLP/JSON mapping
(hex ids, 64-bit integers as strings, enums as integers). Run from the repository root:

    .venv/bin/python tests/traces/data/capture.py
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

HERE = Path(__file__).parent


def main() -> None:
    memory = InMemorySpanExporter()
    tracers = {}
    for name in ("frontend", "checkout", "payment"):
        provider = TracerProvider(resource=Resource.create({"service.name": name}))
        provider.add_span_processor(SimpleSpanProcessor(memory))
        tracers[name] = provider.get_tracer("sample")
    with tracers["frontend"].start_as_current_span("GET /checkout", kind=SpanKind.SERVER) as root:
        root.set_attribute("http.response.status_code", 502)
        with tracers["frontend"].start_as_current_span("POST checkout", kind=SpanKind.CLIENT), \
                tracers["checkout"].start_as_current_span("POST /checkout", kind=SpanKind.SERVER), \
                tracers["checkout"].start_as_current_span("POST payment", kind=SpanKind.CLIENT), \
                tracers["payment"].start_as_current_span("POST /charge", kind=SpanKind.SERVER) as charge:
            time.sleep(0.002)
            charge.set_status(Status(StatusCode.ERROR, "card declined"))
    request = encode_spans(memory.get_finished_spans())
    (HERE / "sdk_export.pb").write_bytes(request.SerializeToString())
    doc = MessageToDict(request, use_integers_for_enums=True)
    for resource_spans in doc["resourceSpans"]:
        for scope_spans in resource_spans["scopeSpans"]:
            for span in scope_spans["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
    (HERE / "sdk_export.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
