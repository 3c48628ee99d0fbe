"""What the standard OpenTelemetry environment asks of a CCC process, decided in one place.

Why a module of its own: every process (client, Lambdas, parent agent, enclave) reads the same
variables and must come to the same answer, and the answer has choices the specification leaves
open. The choices, documented in docs/observability.md:

* `OTEL_SDK_DISABLED=true` installs nothing: no OTLP and no local JSON Lines.
* OTLP is used only when an endpoint is configured (`OTEL_EXPORTER_OTLP_ENDPOINT` or the per-signal
  `OTEL_EXPORTER_OTLP_{TRACES,METRICS}_ENDPOINT`). The specification's default endpoint
  (localhost:4318) is not assumed: a laptop without a collector would log an export error for
  every batch.
* `OTEL_TRACES_EXPORTER` / `OTEL_METRICS_EXPORTER` select per signal: `otlp` (the default),
  `none`, or a comma list; other exporter names are refused by name.
* `OTEL_EXPORTER_OTLP_PROTOCOL` (and the per-signal variants): `http/protobuf` (the default) or
  `grpc`; the exporter package must be installed (the enclave's pins carry none: the enclave has no
  network and reaches a collector only through its parent).
* `OTEL_SERVICE_NAME` names the *deployment*, not the process: it becomes `service.namespace`, and
  each process keeps its own `service.name` (`client`, `lambdas`, `parent`, `enclave`), so a trace
  still shows which process did what. `OTEL_RESOURCE_ATTRIBUTES` is merged into the resource.
* The local JSON Lines files are written whenever a state directory is given, *in addition to*
  OTLP.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ccc_core.errors import CoreError

OTLP = "otlp"
NONE = "none"
HTTP_PROTOBUF = "http/protobuf"
GRPC = "grpc"
PROTOCOLS = (HTTP_PROTOBUF, GRPC)
DEFAULT_NAMESPACE = "ccc"

_TRUE = {"true", "1", "yes", "on"}


class OtelConfigError(CoreError, ValueError):
    """An OTEL_* variable names something this process cannot do."""


@dataclass(frozen=True)
class SignalExport:
    """How one signal (traces or metrics) leaves the process over OTLP."""

    enabled: bool
    protocol: str = HTTP_PROTOBUF


@dataclass(frozen=True)
class OtelSettings:
    disabled: bool
    traces: SignalExport
    metrics: SignalExport
    namespace: str

    @property
    def any_otlp(self) -> bool:
        return self.traces.enabled or self.metrics.enabled


def _exporters(environ: Mapping[str, str], variable: str) -> set[str]:
    raw = environ.get(variable, OTLP).strip().lower() or OTLP
    names = {name.strip() for name in raw.split(",") if name.strip()}
    unknown = names - {OTLP, NONE}
    if unknown:
        raise OtelConfigError(
            f"{variable}={raw!r}: CCC exports only 'otlp' (or 'none'); not {', '.join(sorted(unknown))}"
        )
    return names


def _protocol(environ: Mapping[str, str], signal: str) -> str:
    variable = f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL"
    raw = environ.get(variable) or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or HTTP_PROTOBUF
    protocol = raw.strip().lower()
    if protocol not in PROTOCOLS:
        raise OtelConfigError(f"OTLP protocol {raw!r} is not supported: use {' or '.join(PROTOCOLS)}")
    return protocol


def _signal(environ: Mapping[str, str], signal: str, exporter_variable: str) -> SignalExport:
    names = _exporters(environ, exporter_variable)
    endpoint = environ.get(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if OTLP not in names or not endpoint:
        return SignalExport(enabled=False)
    return SignalExport(enabled=True, protocol=_protocol(environ, signal))


def settings_from_environ(environ: Mapping[str, str]) -> OtelSettings:
    """The export plan the OTEL_* variables describe; `OtelConfigError` names a variable it refuses."""
    disabled = environ.get("OTEL_SDK_DISABLED", "").strip().lower() in _TRUE
    namespace = environ.get("OTEL_SERVICE_NAME", "").strip() or DEFAULT_NAMESPACE
    if disabled:
        return OtelSettings(True, SignalExport(False), SignalExport(False), namespace)
    return OtelSettings(
        disabled=False,
        traces=_signal(environ, "TRACES", "OTEL_TRACES_EXPORTER"),
        metrics=_signal(environ, "METRICS", "OTEL_METRICS_EXPORTER"),
        namespace=namespace,
    )
