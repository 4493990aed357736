"""--patterns-otel: one trace per repetition, one GenAI span per call, live and replayed;
checked with the SDK's in-memory exporter, and over real OTLP/HTTP to a local receiver."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from pytest_agentpatterns.sim import Simulator

_EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module")
def spans_sink() -> InMemorySpanExporter:
    """The process's tracer provider (set once: OpenTelemetry allows no second) feeding an
    in-memory exporter; in-process pytester runs of the plugin use it as the application's."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
    return _EXPORTER


@pytest.fixture
def spans(spans_sink: InMemorySpanExporter) -> Iterator[InMemorySpanExporter]:
    spans_sink.clear()
    yield spans_sink
    spans_sink.clear()


HYBRID = """
import os, anthropic, pytest
from pytest_agentpatterns import Task

URL = os.environ["SIM_URL"]
CLIENT = anthropic.Anthropic(base_url=URL, api_key="sim-key", max_retries=0)

def ask(question, model="sim-fast"):
    m = CLIENT.messages.create(model=model, max_tokens=20,
                               messages=[{"role": "user", "content": question}])
    return m.content[0].text.strip()

t = Task(name="capital", propose=ask, verify=lambda q, out: ask(q, "sim-perfect") == out)

@pytest.mark.agentpatterns(patterns="hybrid(n=2)", repeat=2)
def test_capital(agent):
    agent.run(t, "What is the capital of Testland?")
"""


def _ours(spans: InMemorySpanExporter) -> tuple[ReadableSpan, ...]:
    """The plugin's spans (the Anthropic SDK, seeing a tracer provider, adds its own)."""
    found = spans.get_finished_spans()
    return tuple(
        s
        for s in found
        if s.instrumentation_scope and s.instrumentation_scope.name == "pytest-agentpatterns"
    )


def _by_trace(found: tuple[ReadableSpan, ...]) -> list[tuple[ReadableSpan, list[ReadableSpan]]]:
    roots = [s for s in found if s.parent is None]
    out = []
    for root in sorted(roots, key=lambda s: s.attributes["agentpatterns.repetition"]):  # type: ignore[index]
        children = [
            s for s in found if s.parent is not None and s.parent.span_id == root.context.span_id
        ]
        assert all(s.context.trace_id == root.context.trace_id for s in children)
        out.append(
            (root, sorted(children, key=lambda s: str(s.attributes["agentpatterns.address"])))
        )  # type: ignore[index]
    return out


def _check(spans: InMemorySpanExporter, report: dict[str, Any], replayed: bool) -> None:
    [item] = report["items"]
    traces = _by_trace(_ours(spans))
    assert len(traces) == len(item["repetitions"]) == 2
    for (root, children), rep in zip(traces, item["repetitions"], strict=True):
        assert root.name == "agentpatterns.repetition"
        assert root.attributes["agentpatterns.pattern"] == "hybrid(n=2)"
        assert root.attributes["agentpatterns.outcome"] == rep["outcome"]
        assert root.attributes["agentpatterns.replayed"] is replayed
        assert root.end_time - root.start_time == round(rep["latency"] * 1e9)
        calls = sorted(rep["calls"], key=lambda c: c["address"])
        assert [s.attributes["agentpatterns.address"] for s in children] == [
            c["address"] for c in calls
        ]
        for span, call in zip(children, calls, strict=True):
            a = span.attributes
            assert span.name == f"chat {call['model']}"
            assert span.kind == trace.SpanKind.CLIENT
            assert a["gen_ai.system"] == "anthropic"
            assert a["gen_ai.operation.name"] == "chat"
            assert a["gen_ai.request.model"] == call["model"]
            assert a["gen_ai.usage.input_tokens"] == call["input_tokens"]
            assert a["gen_ai.usage.output_tokens"] == call["output_tokens"]
            assert a["agentpatterns.cost_usd"] == call["cost"]
            assert a["agentpatterns.role"] == call["address"].split("/")[2].split("#")[0]
            assert a["agentpatterns.branch"] == call["address"].split("/")[1]
            assert a["agentpatterns.replayed"] is replayed
            # The span lasts the call's duration: the recorded one when replayed.
            assert span.end_time - span.start_time == round(call["duration"] * 1e9)
        if replayed:
            # On the virtual clock the verify call starts when the slower candidate ended.
            proposes = [s for s in children if s.attributes["agentpatterns.role"] == "propose"]
            verify = next(s for s in children if s.attributes["agentpatterns.role"] == "verify")
            assert verify.start_time == max(s.end_time for s in proposes)
            assert min(s.start_time for s in proposes) == root.start_time


def test_each_repetition_is_a_trace_live_and_replayed(
    pytester: pytest.Pytester, sim_env: Simulator, spans: InMemorySpanExporter
) -> None:
    pytester.makepyfile(test_hybrid=HYBRID)
    path = pytester.path / "report.json"
    args = ("-p", "no:cacheprovider", "--patterns-otel", f"--patterns-json={path}")
    pytester.runpytest(*args, "--patterns-record=once").assert_outcomes(passed=1)
    _check(spans, json.loads(path.read_text()), replayed=False)
    spans.clear()
    pytester.runpytest(*args, "--patterns-record=none").assert_outcomes(passed=1)
    _check(spans, json.loads(path.read_text()), replayed=True)


def test_no_spans_without_the_option(
    pytester: pytest.Pytester, sim_env: Simulator, spans: InMemorySpanExporter
) -> None:
    pytester.makepyfile(test_hybrid=HYBRID)
    pytester.runpytest("-p", "no:cacheprovider", "--patterns-record=once").assert_outcomes(passed=1)
    assert _ours(spans) == ()


def test_the_option_without_the_packages_is_a_usage_error(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile("def test_x():\n    pass\n")
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    result = pytester.runpytest("--patterns-otel")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: --patterns-otel needs the OpenTelemetry API and SDK*pip install 'pytest-agentpatterns[[]otel[]]'"
        ]
    )


def test_an_unknown_otlp_protocol_is_a_usage_error(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile("def test_x():\n    pass\n")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon")
    result = pytester.runpytest("--patterns-otel")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*OTEL_EXPORTER_OTLP_PROTOCOL='carrier-pigeon' is not supported*"])


class _Receiver(BaseHTTPRequestHandler):
    bodies: list[tuple[str, bytes]]

    def do_POST(self) -> None:
        length = int(self.headers["content-length"])
        self.bodies.append((self.path, self.rfile.read(length)))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def otlp_receiver() -> Iterator[tuple[str, list[tuple[str, bytes]]]]:
    bodies: list[tuple[str, bytes]] = []
    handler = type("Receiver", (_Receiver,), {"bodies": bodies})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", bodies
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


PLAIN = """
import pytest, sys
from pytest_agentpatterns import Task

@pytest.mark.agentpatterns(repeat=3)
def test_x(agent):
    assert agent.run(Task(name="t", propose=str.upper), "a") == "A"
"""


def test_a_run_without_the_option_never_imports_opentelemetry(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_plain=PLAIN)
    # Importing opentelemetry, or our module that needs it, now raises ImportError.
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    monkeypatch.setitem(sys.modules, "pytest_agentpatterns.otel", None)
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_spans_go_over_otlp_http_to_the_endpoint_the_environment_names(
    pytester: pytest.Pytester,
    otlp_receiver: tuple[str, list[tuple[str, bytes]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    url, bodies = otlp_receiver
    pytester.makepyfile(test_plain=PLAIN)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "checkout-evals")
    # A subprocess: this process's tracer provider is the in-memory one (see spans_sink).
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--patterns-otel")
    result.assert_outcomes(passed=1)
    assert {path for path, _ in bodies} == {"/v1/traces"}
    names, services = [], set()
    for _, body in bodies:
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            for attribute in resource_spans.resource.attributes:
                if attribute.key == "service.name":
                    services.add(attribute.value.string_value)
            for scope in resource_spans.scope_spans:
                assert scope.scope.name == "pytest-agentpatterns"
                names.extend(span.name for span in scope.spans)
    assert names == ["agentpatterns.repetition"] * 3
    assert services == {"checkout-evals"}
