"""The parts the local stack is built from: identities, CA, measurement, resources, processes.

Each function builds one part from the stack layout; `stack.Supervisor` calls them in order.
Process builders return a `ManagedProcess` plus a readiness check, and keep secrets out of
command lines (they go into 0600 files under `<state-dir>/run`, or the child's environment).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from ccc.atomic_files import write_json_atomic
from ccc.local.aws_config import write_aws_files
from ccc.local.errors import LocalStackError
from ccc.local.fleet_supervisor import LocalWorker
from ccc.local.iam_users import LocalIdentity, default_identities
from ccc.local.kms.key_store import KeyStore
from ccc.local.lambdas import LambdasConfig
from ccc.local.processes import ManagedProcess, clean_environment, python_command
from ccc.local.provision import ProvisionedResources, provision, sort_principals
from ccc.local.state import IdentityRecord, StatePaths
from ccc_common.contracts import lambda_env
from ccc_common.domain.naming import ResourceNames, resource_names
from ccc_common.domain.settings import stage_settings
from ccc_enclave.attester import DISTRIBUTION_PACKAGES, PINS_FILE, distribution_root, enclave_pcrs
from ccc_enclave.counting import default_model_dir
from ccc_enclave.counting.spec import DEFAULT_MODEL_NAME
from ccc_enclave.nsm.local_ca import LocalNitroCA
from ccc_enclave.protocol.health_messages import HealthReply, HealthRequest
from ccc_enclave.transport import Channel, TransportError

STAGE = "local"
HEALTH_TIMEOUT_S = 2.0
# Jobs one enclave runs at once (and parent threads feeding it): 2 cores on a small laptop/CI box.
ENCLAVE_CONCURRENCY = 2
# The job lease of a local worker (parent.json lease_s): shorter than the local visibility timeout
# (30 s), so a killed worker's message comes back after its lease ended and the next receive runs
# the job (a receive that only finds the lease held would spend one of the 3 the DLQ allows), and
# within half a minute instead of after AWS's default of one full enclave pass (~4 min). A local
# pass that outlives it may run twice; the first result stands (`make chaos` counts run-twice).
LOCAL_JOB_LEASE_S = 25.0


class ComponentError(LocalStackError, RuntimeError):
    """A part of the stack cannot be built (missing model, bad layout, ...)."""


@dataclass(frozen=True)
class StackLayout:
    """What every component builder needs to know about the stack being built."""

    paths: StatePaths
    region: str
    account_id: str
    endpoint_url: str  # moto
    model_path: Path

    @property
    def names(self) -> ResourceNames:
        return resource_names(STAGE, self.account_id, self.region)

    @property
    def model_dir(self) -> Path:
        return self.model_path.parent


@dataclass
class Component:
    """A process and the check that says it is ready to serve."""

    process: ManagedProcess
    ready: Callable[[], bool]
    url: str = ""


# ----- static parts ------------------------------------------------------------------------


def resolve_model_path(model_path: Path | None) -> Path:
    """The enclave's ONNX model: the given file, else the default model card's model."""
    if model_path is None:
        model_path = default_model_dir() / f"{DEFAULT_MODEL_NAME}.onnx"
    model_path = Path(model_path).resolve()
    if not model_path.is_file():
        raise ComponentError(f"model {model_path} not found; build it with `make model`")
    return model_path


def local_identities(account_id: str) -> list[LocalIdentity]:
    return list(default_identities(account_id).values())


def create_ca(layout: StackLayout) -> Path:
    """A fresh local Nitro-shaped CA for this stack; returns the root certificate's PEM path."""

    ca = LocalNitroCA.create(layout.paths.ca)
    root_pem = layout.paths.ca / "root.crt"
    if root_pem.read_bytes() != ca.root_pem:
        raise ComponentError(f"{root_pem} does not hold the CA root just created")
    return root_pem


@dataclass(frozen=True)
class EnclaveImage:
    """An immutable copy of what runs in the enclave: the local stand-in for an EIF.

    Why a copy: PCR0 measures the enclave distribution (code and pinned requirements) and the
    model. If the enclave ran from the working tree, any edit after `up` (an editor saving,
    `git pull`) would give a restarted or newly scaled enclave another PCR0, and the key policy
    would refuse it. An EIF is built once and does not change under a running fleet; neither does
    this snapshot.
    """

    root: Path
    distribution: Path
    model_dir: Path
    model_path: Path


def build_enclave_image(layout: StackLayout) -> EnclaveImage:
    """Copy the enclave distribution (without bytecode caches) and the model into `<state>/image`."""


    source = distribution_root()
    root = layout.paths.root / "image"
    shutil.rmtree(root, ignore_errors=True)
    distribution = root / "code"
    for package in DISTRIBUTION_PACKAGES:
        shutil.copytree(source / package, distribution / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copyfile(source / PINS_FILE, distribution / PINS_FILE)
    model_dir = root / "models"
    model_dir.mkdir(parents=True)
    model_path = model_dir / layout.model_path.name
    shutil.copyfile(layout.model_path, model_path)
    card = layout.model_path.with_suffix(".json")
    if card.is_file():
        shutil.copyfile(card, model_dir / card.name)
    return EnclaveImage(root=root, distribution=distribution, model_dir=model_dir, model_path=model_path)


def enclave_python() -> Path:
    """The interpreter of `.venv-enclave`: the enclave's pinned requirements and nothing else.

    Why not this process's interpreter: the dev environment has every package of the repository,
    so an import the enclave image lacks would go unnoticed locally. `CCC_ENCLAVE_PYTHON` overrides
    the default `<checkout>/.venv-enclave/bin/python`.
    """

    configured = os.environ.get("CCC_ENCLAVE_PYTHON")
    python = Path(configured) if configured else distribution_root().parents[1] / ".venv-enclave" / "bin" / "python"
    if not python.is_file():
        raise ComponentError(f"enclave interpreter {python} is missing: run `make setup` to build .venv-enclave")
    return python


def enclave_command(module: str, *args: str) -> list[str]:
    """`python -m module args` in `.venv-enclave`, with neither the user site nor the working
    directory on `sys.path` (-s -P): the enclave imports only what its image would hold."""
    return [str(enclave_python()), "-s", "-P", "-m", module, *args]


def measure(image: EnclaveImage) -> dict[int, bytes]:
    """PCR0/1/2 the simulated enclave will report: the enclave's own recipe over the image's code and model."""

    return enclave_pcrs(image.model_path, image.distribution)


def key_store_path(layout: StackLayout) -> Path:
    """The KMS gateway's keys (0600, under `run/`, so a fresh stack starts with fresh keys)."""
    return layout.paths.run / "kms-keys.json"


def provision_stack(
    layout: StackLayout, identities: Iterable[LocalIdentity], pcrs: Mapping[int, bytes], workers: int
) -> ProvisionedResources:
    """Create the resources in moto, as the admin identity; the KMS keys in the gateway's key store."""

    admin = next(i for i in identities if i.name == "admin")
    session = boto3.session.Session(
        aws_access_key_id=admin.access_key_id,
        aws_secret_access_key=admin.secret_access_key,
        region_name=layout.region,
    )

    def client(service: str) -> Any:
        return session.client(service, endpoint_url=layout.endpoint_url)  # type: ignore[call-overload]

    key_store_path(layout).unlink(missing_ok=True)
    return provision(
        s3=client("s3"),
        sqs=client("sqs"),
        dynamodb=client("dynamodb"),
        key_store=KeyStore(key_store_path(layout)),
        events=client("events"),
        autoscaling=client("autoscaling"),
        ec2=client("ec2"),
        workers=workers,
        names=layout.names,
        settings=stage_settings(STAGE),
        principals=sort_principals(list(identities)),
        pcrs=pcrs,
    )


def admin_client(layout: StackLayout, identities: Iterable[LocalIdentity], service: str) -> Any:
    """A boto3 client for moto as the admin identity (the supervisor's own view of the stack)."""

    admin = next(i for i in identities if i.name == "admin")
    session = boto3.session.Session(
        aws_access_key_id=admin.access_key_id, aws_secret_access_key=admin.secret_access_key, region_name=layout.region
    )
    return session.client(service, endpoint_url=layout.endpoint_url)  # type: ignore[call-overload]


def write_client_config(
    layout: StackLayout, kms_endpoint_url: str, identities: Iterable[IdentityRecord]
) -> tuple[Path, Path]:
    return write_aws_files(
        layout.paths.aws,
        region=layout.region,
        endpoint_url=layout.endpoint_url,
        kms_endpoint_url=kms_endpoint_url,
        identities=identities,
    )


# ----- readiness probes ---------------------------------------------------------------------


def free_tcp_port() -> int:
    """A port that was free a moment ago (only for programs that cannot bind port 0 themselves)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# ----- processes ----------------------------------------------------------------------------


def gateway_process(layout: StackLayout, identities: Iterable[LocalIdentity]) -> Component:
    """The attested-KMS gateway, serving the keys `provision_stack` put in its key store.

    It binds port 0 and reports its URL in a ready file; `pin_gateway_port` then rewrites its
    config with that port, so that a restarted gateway comes back at the URL clients already know.
    """
    config_path = layout.paths.run / "kms-gateway.json"
    ready_file = layout.paths.run / "kms-gateway.ready.json"
    config = {
        "key_store": str(key_store_path(layout)),
        "host": "127.0.0.1",
        "port": 0,
        "attestation_root_pem": (layout.paths.ca / "root.crt").read_text(),
        "identities": {i.name: i.to_dict() for i in identities},
        "iam_admins": ["admin"],
    }
    write_json_atomic(config_path, config)
    process = ManagedProcess(
        name="kms-gateway",
        command=python_command("ccc.local.kms.gateway", "--config", str(config_path), "--ready-file", str(ready_file)),
        log_path=layout.paths.log("kms-gateway"),
        env=clean_environment(),
    )
    return Component(process=process, ready=ready_file.exists)


def pin_api_port(layout: StackLayout) -> str:
    """Read the jobs API's bound URL and fix its port in the Lambdas config (for restarts)."""
    ready = json.loads((layout.paths.run / "lambdas.ready").read_text())
    config_path = layout.paths.run / "lambdas.json"
    config = json.loads(config_path.read_text())
    config["api_port"] = int(ready["api_url"].rsplit(":", 1)[1])
    write_json_atomic(config_path, config)
    return str(ready["api_url"])


def pin_gateway_port(layout: StackLayout) -> str:
    """Read the gateway's bound URL and fix its port in the config (for restarts). Returns the URL."""
    config_path = layout.paths.run / "kms-gateway.json"
    ready = json.loads((layout.paths.run / "kms-gateway.ready.json").read_text())
    config = json.loads(config_path.read_text())
    config["port"] = int(ready["port"])
    write_json_atomic(config_path, config)
    return str(ready["url"])


def worker_endpoint(layout: StackLayout, index: int) -> str:
    """A UNIX socket in the state dir, or TCP when the path would exceed sun_path."""
    path = layout.paths.run / f"enclave-{index}.sock"
    if len(str(path).encode()) < 100:
        return f"unix://{path}"
    return f"tcp://127.0.0.1:{free_tcp_port()}"


_INSTANCE_KEY = "service.instance.id="


def worker_resource_attributes(index: int) -> dict[str, str]:
    """OTEL_RESOURCE_ATTRIBUTES naming worker `index`'s processes `worker-<index>` (`service.instance.id`),
    so the report draws each worker's enclave on its own line; the user's own attributes are kept."""
    inherited = os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "")
    kept = [item for item in inherited.split(",") if item.strip() and not item.strip().startswith(_INSTANCE_KEY)]
    return {"OTEL_RESOURCE_ATTRIBUTES": ",".join([*kept, f"service.instance.id=worker-{index}"])}


def worker_processes(
    layout: StackLayout,
    identities: Iterable[LocalIdentity],
    resources: ProvisionedResources,
    kms_endpoint_url: str,
    index: int,
    image: EnclaveImage,
) -> LocalWorker:
    """Enclave server + parent agent pair number `index` (1-based), connected by their own socket.

    The enclave runs from the stack's enclave image with `.venv-enclave`'s interpreter, so it can
    import only its own distribution and pinned requirements, as in the EIF; the parent agent,
    outside the trust boundary, runs from the installed code.
    """
    endpoint = worker_endpoint(layout, index)
    instance = worker_resource_attributes(index)
    enclave = ManagedProcess(
        name=f"enclave-{index}",
        command=enclave_command(
            "ccc_enclave",
            "--listen", endpoint,
            "--model-dir", str(image.model_dir),
            "--nsm", f"simulated:{layout.paths.ca}",
            "--kms-endpoint", kms_endpoint_url,
            "--concurrency", str(ENCLAVE_CONCURRENCY),
        ),
        log_path=layout.paths.log(f"enclave-{index}"),
        env=clean_environment({"PYTHONPATH": str(image.root / "code"), "PYTHONDONTWRITEBYTECODE": "1", **instance}),
        cwd=image.root,
    )
    parent_identity = next(i for i in identities if i.name == "parent")
    parent_config_path = layout.paths.run / f"parent-{index}.json"
    parent_ready_file = layout.paths.run / f"parent-{index}.ready"
    # enclave_worker.parent.agent_config documents this format.
    parent_config = {
        "stage": STAGE,
        "region": layout.region,
        "queue_url": resources.queue_url,
        "inbox_bucket": layout.names.inbox_bucket,
        "results_bucket": layout.names.results_bucket,
        "jobs_table": resources.jobs_table,
        "lease_s": LOCAL_JOB_LEASE_S,
        "enclave": {"uri": endpoint},
        "aws": {
            "endpoint_url": layout.endpoint_url,
            "credentials": {
                "access_key_id": parent_identity.access_key_id,
                "secret_access_key": parent_identity.secret_access_key,
            },
        },
        "kms": {"region": layout.region, "endpoint_url": kms_endpoint_url},
        "workers": ENCLAVE_CONCURRENCY,
        "ready_file": str(parent_ready_file),
    }
    write_json_atomic(parent_config_path, parent_config)
    parent = ManagedProcess(
        name=f"parent-{index}",
        command=python_command("enclave_worker.parent", "--config", str(parent_config_path)),
        log_path=layout.paths.log(f"parent-{index}"),
        env=clean_environment(instance),
    )
    return LocalWorker(slot=index, enclave=enclave, parent=parent, parent_ready=parent_ready_file, endpoint=endpoint)


def lambdas_process(
    layout: StackLayout,
    identities: Iterable[LocalIdentity],
    resources: ProvisionedResources,
    *,
    idle_timeout_s: int | None,
    scaler_tick_s: float,
) -> Component:
    """The Lambda handlers in one local process, with the environment the CDK stack gives them."""

    # The Lambda roles' IAM policies (ccc.local.iam_stack), not the admin's: enforced by the IAM gateway.
    runner = next(i for i in identities if i.name == "lambdas")
    names = layout.names
    # The Lambda variable names come from ccc_common.contracts.lambda_env, the same constants CDK uses.
    env = {
        lambda_env.STAGE: STAGE,
        "POWERTOOLS_TRACE_DISABLED": "true",
        lambda_env.POWERTOOLS_METRICS_NAMESPACE: names.metrics_namespace,
        "AWS_ENDPOINT_URL": layout.endpoint_url,
        "AWS_ACCESS_KEY_ID": runner.access_key_id,
        "AWS_SECRET_ACCESS_KEY": runner.secret_access_key,
        "AWS_DEFAULT_REGION": layout.region,
        "AWS_REGION": layout.region,
        lambda_env.WORK_QUEUE_URL: resources.queue_url,
        lambda_env.FLEET_GROUP: resources.fleet_group,
        lambda_env.JOBS_TABLE: resources.jobs_table,
        lambda_env.INBOX_BUCKET: names.inbox_bucket,
        lambda_env.RESULTS_BUCKET: names.results_bucket,
        lambda_env.ARCHIVE_BUCKET: names.artifacts_bucket,
        lambda_env.DLQ_URL: resources.dlq_url,
        lambda_env.TENANT_PRINCIPALS: json.dumps(
            {i.name: [i.principal_arn] for i in identities if i.name.startswith("tenant-")}, sort_keys=True
        ),
    }
    if idle_timeout_s is not None:
        env[lambda_env.IDLE_TIMEOUT_S] = str(idle_timeout_s)
    ready_file = layout.paths.run / "lambdas.ready"
    ready_file.unlink(missing_ok=True)
    config = LambdasConfig(
        env=env,
        account=layout.account_id,
        region=layout.region,
        job_events_queue_url=resources.job_events_queue_url,
        dlq_url=resources.dlq_url,
        dlq_arn=resources.dlq_arn,
        function_names={
            short: names.function_name(short) for short in ("scaler", "job_events", "dead_letters", "jobs_api")
        },
        scaler_enabled=idle_timeout_s is not None,
        scaler_tick_s=scaler_tick_s,
        ready_file=str(ready_file),
        identities=[i.to_dict() for i in identities],
    )
    config_path = layout.paths.run / "lambdas.json"
    write_json_atomic(config_path, dataclasses.asdict(config))
    process = ManagedProcess(
        name="lambdas",
        command=python_command("ccc.local.lambdas", "--config", str(config_path)),
        log_path=layout.paths.log("lambdas"),
        env=clean_environment(),
    )
    return Component(process=process, ready=ready_file.exists)


class MeasurementMismatch(ComponentError):
    """The enclave reports another PCR0 than the key policy pins: its code changed after measuring."""


def enclave_pcr0(endpoint: str) -> str | None:
    """PCR0 (hex) from the enclave's health reply, or None if it does not answer (yet)."""

    try:
        with Channel.connect(endpoint, timeout=HEALTH_TIMEOUT_S) as channel:
            channel.send(HealthRequest(request_id="local-stack-ready"), timeout=HEALTH_TIMEOUT_S)
            reply = channel.receive(timeout=HEALTH_TIMEOUT_S)
    except (TransportError, OSError, ValueError):
        return None
    return reply.status.pcr0_hex if isinstance(reply, HealthReply) else None


def check_measurement(endpoint: str, expected_pcr0: str) -> None:
    """Raise MeasurementMismatch if the enclave at `endpoint` is not the measured one."""
    pcr0 = enclave_pcr0(endpoint)
    if pcr0 is not None and pcr0 != expected_pcr0:
        raise MeasurementMismatch(
            f"the enclave at {endpoint} reports PCR0 {pcr0[:16]}…, the key policy pins {expected_pcr0[:16]}…: "
            "its code or model changed after the stack measured it (KMS refuses it); start the stack again"
        )
