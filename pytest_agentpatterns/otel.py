"""OpenTelemetry (``--patterns-otel``): one trace per repetition, one span per call.

Each repetition becomes a root span (``agentpatterns.repetition``) lasting its latency, and each
of its calls a client span under it, named and described by the OpenTelemetry GenAI semantic
conventions (``chat <model>``, ``gen_ai.system``, ``gen_ai.request.model``,
``gen_ai.usage.input_tokens`` / ``output_tokens``), with the call's cost, pattern, branch, role
and address as ``agentpatterns.*`` attributes.

Spans are made once the item is over, with explicit timestamps, so a replayed run emits them
too: a live call's span starts when the call was sent and lasts its measured duration; a
replayed call's span starts where the call falls on the repetition's virtual clock (the
recorded durations composed along the pattern's branches, as replayed latency is) and lasts
its recorded duration. The repetition's span starts when the repetition started.

The tracer provider is the application's when one is set (``opentelemetry-instrument``, or
``trace.set_tracer_provider`` in a conftest.py); otherwise one of our own exports over OTLP as
the standard ``OTEL_EXPORTER_OTLP_*`` variables say (``http/protobuf`` unless
``OTEL_EXPORTER_OTLP_PROTOCOL=grpc``), with ``service.name`` ``pytest-agentpatterns`` unless
``OTEL_SERVICE_NAME`` says otherwise. Spans are flushed after each item, between items, so no
export runs while a replay-only item keeps the network closed.

Imported only with ``--patterns-otel``; the packages come with ``pip install
'pytest-agentpatterns[otel]'``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from .execution import RepetitionState, call_offsets
from .records import CallRecord, ItemResult, Repetition
from .usage import vendor_of

INSTALL_HINT = "pip install 'pytest-agentpatterns[otel]'"

SYSTEMS = {
    "anthropic": "anthropic",
    "openai": "openai",
    "aws": "aws.bedrock",
    "google": "gcp.vertex_ai",
    "azure": "az.ai.openai",
}
"""``gen_ai.system`` for each vendor :func:`~pytest_agentpatterns.usage.vendor_of` names."""


class OtelUnavailable(ImportError):
    """``--patterns-otel`` was given, but the OpenTelemetry packages are not installed."""


def require(environ: Mapping[str, str] | None = None) -> None:
    """Raise :class:`OtelUnavailable` unless the API and SDK are installed, and the exporter
    the environment asks for (``OTEL_EXPORTER_OTLP_PROTOCOL``)."""
    try:
        import opentelemetry.sdk.trace
        import opentelemetry.trace  # noqa: F401
    except ImportError as exc:
        raise OtelUnavailable(
            f"--patterns-otel needs the OpenTelemetry API and SDK ({exc.name or exc}): "
            f"{INSTALL_HINT}"
        ) from None
    _exporter_class(os.environ if environ is None else environ)


class Exporter:
    """Turns finished items into spans on one tracer provider."""

    def __init__(self, provider: Any = None, environ: Mapping[str, str] | None = None) -> None:
        require(environ)
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider

        environ = os.environ if environ is None else environ
        self.owned = False
        if provider is None:
            current = trace.get_tracer_provider()
            if isinstance(current, TracerProvider):
                provider = current
            else:
                provider = build_provider(environ)
                self.owned = True
        self.provider = provider
        from . import __version__

        self.tracer = provider.get_tracer("pytest-agentpatterns", __version__)

    def export(self, result: ItemResult, states: Sequence[RepetitionState]) -> None:
        """One trace per repetition of ``result``; ``states`` are its repetitions' states (by
        index), for start times and call offsets. Flushes before returning."""
        by_index = {state.index: state for state in states}
        for rep in result.repetitions:
            state = by_index.get(rep.index)
            if state is not None:
                self._repetition(result, rep, state)
        self.provider.force_flush()

    def shutdown(self) -> None:
        """Flush; shut our own provider down (an application's is left running)."""
        if self.owned:
            self.provider.shutdown()
        else:
            self.provider.force_flush()

    def _repetition(self, item: ItemResult, rep: Repetition, state: RepetitionState) -> None:
        from opentelemetry import trace
        from opentelemetry.trace import Status, StatusCode

        start = state.started_ns
        attributes: dict[str, Any] = {
            "agentpatterns.test": item.test,
            "agentpatterns.case": item.case,
            "agentpatterns.pattern": item.pattern,
            "agentpatterns.nodeid": item.nodeid,
            "agentpatterns.repetition": rep.index,
            "agentpatterns.outcome": rep.outcome,
            "agentpatterns.latency_s": rep.latency,
            "agentpatterns.replayed": bool(rep.calls) and all(c.replayed for c in rep.calls),
        }
        if rep.score is not None:
            attributes["agentpatterns.score"] = rep.score
        if rep.cost is not None:
            attributes["agentpatterns.cost_usd"] = rep.cost
        if rep.judge_calls and rep.judge_cost is not None:
            attributes["agentpatterns.judge_cost_usd"] = rep.judge_cost
        root = self.tracer.start_span(
            "agentpatterns.repetition", start_time=start, attributes=attributes
        )
        if rep.outcome == "error":
            root.set_status(Status(StatusCode.ERROR, (rep.message or "error").splitlines()[0]))
        context = trace.set_span_in_context(root)
        virtual = call_offsets(state.root)
        for call in rep.calls:
            measured = state.call_starts.get(call.address)
            offset = virtual.get(call.address) if call.replayed else measured
            if offset is None:
                offset = measured if measured is not None else 0.0
            self._call(item, call, start + _ns(offset), context)
        root.end(end_time=start + _ns(rep.latency))

    def _call(self, item: ItemResult, call: CallRecord, start: int, context: Any) -> None:
        from opentelemetry.trace import SpanKind, Status, StatusCode

        span = self.tracer.start_span(
            f"chat {call.model}" if call.model else "chat",
            context=context,
            kind=SpanKind.CLIENT,
            start_time=start,
            attributes=call_attributes(item.pattern, call),
        )
        if call.error or (call.status is not None and call.status >= 400):
            span.set_status(Status(StatusCode.ERROR, call.error or f"HTTP {call.status}"))
        span.end(end_time=start + _ns(call.duration))


def call_attributes(pattern: str, call: CallRecord) -> dict[str, Any]:
    """A call's span attributes: GenAI semantic conventions, then ``agentpatterns.*``."""
    from urllib.parse import urlsplit

    path = urlsplit(call.url).path
    vendor = vendor_of(path)
    found: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": SYSTEMS.get(vendor or "", vendor or "unknown"),
        "agentpatterns.pattern": pattern,
        "agentpatterns.branch": call.address.branch_text,
        "agentpatterns.role": call.address.role,
        "agentpatterns.address": str(call.address),
        "agentpatterns.replayed": call.replayed,
        "http.request.method": call.method,
        "url.path": path,
    }
    optional = {
        "gen_ai.request.model": call.model,
        "gen_ai.usage.input_tokens": call.input_tokens,
        "gen_ai.usage.output_tokens": call.output_tokens,
        "agentpatterns.cache_read_tokens": call.cache_read_tokens,
        "agentpatterns.cache_write_tokens": call.cache_write_tokens,
        "agentpatterns.cost_usd": call.cost,
        "agentpatterns.prompt_hash": call.prompt_hash,
        "http.response.status_code": call.status,
        "error.type": call.error.split(":", 1)[0] if call.error else None,
    }
    found.update({k: v for k, v in optional.items() if v is not None})
    return found


def build_provider(environ: Mapping[str, str]) -> Any:
    """A tracer provider exporting over OTLP as the ``OTEL_EXPORTER_OTLP_*`` variables say."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    exporter = _exporter_class(environ)()
    attributes = (
        {} if environ.get("OTEL_SERVICE_NAME") else {"service.name": "pytest-agentpatterns"}
    )
    provider = TracerProvider(resource=Resource.create(attributes))
    # Exports happen when each item's spans are flushed, between items (see the docstring).
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=3_600_000))
    return provider


def _exporter_class(environ: Mapping[str, str]) -> Any:
    """The OTLP span exporter class for ``OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL``."""
    protocol = (
        environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()
    if protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc import (  # type: ignore[import-not-found,unused-ignore]
                trace_exporter as grpc,
            )
        except ImportError:
            raise OtelUnavailable(
                "OTEL_EXPORTER_OTLP_PROTOCOL=grpc needs opentelemetry-exporter-otlp-proto-grpc "
                "(or use http/protobuf, which pytest-agentpatterns[otel] installs)"
            ) from None
        return grpc.OTLPSpanExporter
    if protocol not in ("http/protobuf", "http"):
        raise OtelUnavailable(
            f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not supported: use http/protobuf "
            "(the default) or grpc"
        )
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:
        raise OtelUnavailable(
            "--patterns-otel exports over OTLP and needs opentelemetry-exporter-otlp-proto-http: "
            f"{INSTALL_HINT}"
        ) from None
    return OTLPSpanExporter


def _ns(seconds: float) -> int:
    return round(seconds * 1e9)
