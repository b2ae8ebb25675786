# A learner's OTel-instrumented service, reduced to what the hub must take: the Python
# OpenTelemetry SDK (PyPI) exporting a trace of two spans, a log record and two metrics over
# OTLP/HTTP or OTLP/gRPC (gzip). Prints the trace id. Run by tests/interop/otel.rs.
#   python3 otel_peer.py http|grpc ENDPOINT SERVICE RUN
import logging, sys, time
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.trace import SpanKind, Status, StatusCode

transport, endpoint, service, run = sys.argv[1:5]
if transport == "http":
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    kw = lambda signal: {"endpoint": f"{endpoint}/v1/{signal}", "compression": Compression.Gzip}
else:
    from grpc import Compression
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    kw = lambda signal: {"endpoint": endpoint, "insecure": True, "compression": Compression.Gzip}

resource = Resource.create({"service.name": service, "deployment.environment.name": "staging"})
tracing = TracerProvider(resource=resource)
tracing.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(**kw("traces"))))
tracer = tracing.get_tracer("peer")
logs = LoggerProvider(resource=resource)
logs.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(**kw("logs"))))
log = logging.getLogger(f"peer-{run}")
log.propagate = False
log.addHandler(LoggingHandler(level=logging.INFO, logger_provider=logs))
log.setLevel(logging.INFO)
reader = PeriodicExportingMetricReader(OTLPMetricExporter(**kw("metrics")), export_interval_millis=60000)
meters = MeterProvider(resource=resource, metric_readers=[reader])
meter = meters.get_meter("peer")
orders = meter.create_counter("orders", description="Orders taken.")
latency = meter.create_histogram("latency", unit="ms")

with tracer.start_as_current_span("GET /recipes", kind=SpanKind.SERVER) as root:
    root.set_attribute("run", run)
    with tracer.start_as_current_span("call recipe-api", kind=SpanKind.CLIENT) as child:
        child.set_attribute("peer.service", "recipe-api")
        child.set_status(Status(StatusCode.ERROR, "upstream said no"))
    log.warning("slow upstream", extra={"type": "request-outgoing", "run": run})
    trace_id = format(root.get_span_context().trace_id, "032x")
orders.add(3, {"route": "/recipes"})
orders.add(4, {"route": "/recipes"})
for v in (1.0, 7.0, 30.0):
    latency.record(v)
reader.force_flush()
logs.force_flush()
tracing.force_flush()
meters.shutdown()
logs.shutdown()
tracing.shutdown()
print(trace_id)
