"""Resource names of every tier: buckets, queues, table, key alias, fleet group, functions.

Why one module: the CDK stack, the local stack, the parent agent, the Lambdas and the client all
have to agree on the same bucket names, queue names and S3 key scheme. If any of them builds a
name on its own, the tiers drift and a job silently goes nowhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from ccc_core.identity import NamingError
from ccc_core.telemetry.metric_registry import NAMESPACE

STAGES = ("local", "dev", "prod")
PROJECT = "ccc"

# CloudWatch namespace of every custom metric (Lambdas, parent agent, dashboards, alarms): the registry's.
METRICS_NAMESPACE = NAMESPACE


@dataclass(frozen=True)
class ResourceNames:
    """Physical names of every named resource of one stage (CDK and local stack alike)."""

    stage: str
    account: str
    region: str

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise NamingError(f"unknown stage {self.stage!r}; expected one of {STAGES}")

    @property
    def prefix(self) -> str:
        return f"{PROJECT}-{self.stage}"

    @property
    def stack_name(self) -> str:
        return f"Ccc{self.stage.capitalize()}"

    def _bucket(self, role: str) -> str:
        # Bucket names are global: account and region make them unique and predictable.
        return f"{self.prefix}-{role}-{self.account}-{self.region}"

    @property
    def inbox_bucket(self) -> str:
        return self._bucket("inbox")

    @property
    def results_bucket(self) -> str:
        return self._bucket("results")

    @property
    def artifacts_bucket(self) -> str:
        return self._bucket("artifacts")

    @property
    def access_logs_bucket(self) -> str:
        return self._bucket("access-logs")

    @property
    def work_queue(self) -> str:
        return f"{self.prefix}-work"

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.prefix}-work-dlq"

    @property
    def jobs_table(self) -> str:
        return f"{self.prefix}-jobs"

    @property
    def key_alias(self) -> str:
        return f"alias/{self.prefix}-data"

    @property
    def fleet_group(self) -> str:
        return f"{self.prefix}-enclave-fleet"

    @property
    def lifecycle_hook(self) -> str:
        return f"{self.prefix}-drain"

    @property
    def metrics_namespace(self) -> str:
        return METRICS_NAMESPACE

    def function_name(self, short: str) -> str:
        return f"{self.prefix}-{short.replace('_', '-')}"


def resource_names(stage: str, account: str, region: str) -> ResourceNames:
    """The one function that names every resource."""
    return ResourceNames(stage=stage, account=account, region=region)
