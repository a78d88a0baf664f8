"""Capture a real OTLP protobuf export from the OpenTelemetry SDK (a small call chain)."""
import time
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry import trace as api

mem = InMemorySpanExporter()
def provider(name):
    p = TracerProvider(resource=Resource.create({"service.name": name}))
    p.add_span_processor(SimpleSpanProcessor(mem))
    return p
fe, co, pay = (provider(n).get_tracer("sample") for n in ("frontend", "checkout", "payment"))
with fe.start_as_current_span("GET /checkout", kind=SpanKind.SERVER) as root:
    root.set_attribute("http.response.status_code", 502)
    with fe.start_as_current_span("POST checkout", kind=SpanKind.CLIENT):
        with co.start_as_current_span("POST /checkout", kind=SpanKind.SERVER):
            with co.start_as_current_span("POST payment", kind=SpanKind.CLIENT):
                with pay.start_as_current_span("POST /charge", kind=SpanKind.SERVER) as charge:
                    time.sleep(0.002)
                    charge.set_status(Status(StatusCode.ERROR, "card declined"))
spans = mem.get_finished_spans()
open("tests/traces/data/sdk_export.pb", "wb").write(encode_spans(spans).SerializeToString())
print(len(spans))

import base64, json
from google.protobuf.json_format import MessageToDict
doc = MessageToDict(encode_spans(spans), use_integers_for_enums=True)
for rs in doc["resourceSpans"]:
    for ss in rs["scopeSpans"]:
        for s in ss["spans"]:
            for k in ("traceId", "spanId", "parentSpanId"):
                if k in s:
                    s[k] = base64.b64decode(s[k]).hex()
open("tests/traces/data/sdk_export.json", "w").write(json.dumps(doc, indent=1) + "\n")
