"""Price what a synthesised stack costs while its fleet is at zero, resource by resource.

Why from the template and not from a typed table: the network mode, the number of AZs, the warm
pool and the monitoring all change what is billed by the hour; reading the template that will be
deployed keeps the figure honest for any context (`-c network=... -c warm_pool=...`). The same
pass records what one *running* host costs per hour (instance, root volume, public IPv4), which
the simulator multiplies by the host-seconds it models.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ccc.cost.errors import CostError
from ccc.cost.prices import PriceTable

# The scaler's run time per scheduled invocation (two describe calls and a decision): an
# assumption, not a measurement; the request charge dominates either way.
SCHEDULED_LAMBDA_DURATION_S = 0.2

Resources = Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True)
class IdleItem:
    kind: str  # endpoints | kms-keys | dashboards | alarms | schedules | warm-pool | public-ipv4
    description: str
    quantity: float
    unit_usd: float  # per unit and month
    monthly_usd: float


@dataclass(frozen=True)
class HostPricing:
    """One running enclave host, per hour (what the simulator bills per host-second)."""

    instance_type: str
    instance_hour_usd: float
    root_volume_gib: float
    public_ipv4: bool
    hourly_usd: float


@dataclass(frozen=True)
class IdleReport:
    stack: str
    region: str
    prices_as_of: str
    items: tuple[IdleItem, ...]
    host: HostPricing
    max_instances: int
    warm_pool_size: int
    through_endpoints: bool

    @property
    def monthly_usd(self) -> float:
        return round(sum(item.monthly_usd for item in self.items), 2)

    def monthly_usd_without(self, kind: str) -> float:
        return round(sum(item.monthly_usd for item in self.items if item.kind != kind), 2)

    def to_json(self) -> dict[str, Any]:
        """``{"monthly_usd": <total>, "items": [...]}`` (the human output adds the host price and date)."""
        return {"monthly_usd": self.monthly_usd, "items": [asdict(item) for item in self.items]}


def load_template(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CostError(f"cannot read template {path}: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("Resources"), dict):
        raise CostError(f"{path} is not a CloudFormation template (no Resources)")
    return document


def _of_type(resources: Resources, cfn_type: str) -> dict[str, Mapping[str, Any]]:
    return {k: v.get("Properties", {}) for k, v in resources.items() if v.get("Type") == cfn_type}


def _ref(value: Any) -> str | None:
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            return str(value["Fn::GetAtt"][0])
    return None


def _invocations_per_month(expression: str, hours: float) -> float:
    match = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", expression.strip())
    if not match:
        raise CostError(f"cannot price schedule {expression!r} (only rate(...) expressions)")
    every_min = int(match.group(1)) * {"minute": 1, "hour": 60, "day": 1440}[match.group(2).rstrip("s")]
    return hours * 60 / every_min


def _group(resources: Resources) -> tuple[str, Mapping[str, Any]]:
    groups = _of_type(resources, "AWS::AutoScaling::AutoScalingGroup")
    if len(groups) != 1:
        raise CostError(f"expected one Auto Scaling group, found {len(groups)}")
    return next(iter(groups.items()))


def _launch_template(resources: Resources, group: Mapping[str, Any]) -> tuple[Mapping[str, Any], str | None]:
    """The group's launch template data, and the override instance type when a mixed policy names one."""
    spec = group.get("LaunchTemplate")
    override = None
    if spec is None:
        policy = group.get("MixedInstancesPolicy", {}).get("LaunchTemplate", {})
        spec = policy.get("LaunchTemplateSpecification")
        overrides = policy.get("Overrides", [])
        override = overrides[0]["InstanceType"] if overrides else None
    name = _ref((spec or {}).get("LaunchTemplateId"))
    if name is None or name not in resources:
        raise CostError("the Auto Scaling group's launch template is not in the template")
    return resources[name]["Properties"]["LaunchTemplateData"], override


def _host(resources: Resources, group: Mapping[str, Any], prices: PriceTable) -> HostPricing:
    data, override = _launch_template(resources, group)
    instance_type = data.get("InstanceType") or override
    if not instance_type:
        raise CostError("no instance type in the launch template or its overrides")
    root_gib = float(sum(m.get("Ebs", {}).get("VolumeSize", 0) for m in data.get("BlockDeviceMappings", [])))
    subnets = [_ref(s) for s in group.get("VPCZoneIdentifier", [])]
    public = any(resources.get(s or "", {}).get("Properties", {}).get("MapPublicIpOnLaunch") is True for s in subnets)
    instance_hour = prices.instance_hour(str(instance_type))
    hourly = (
        instance_hour
        + root_gib * prices.gp3_gb_month / prices.hours_per_month
        + (prices.public_ipv4_hour if public else 0.0)
    )
    return HostPricing(str(instance_type), instance_hour, root_gib, public, hourly)


def price_idle(
    template: Mapping[str, Any], prices: PriceTable, *, stack: str = "", account_dashboards: int = 0
) -> IdleReport:
    """Every hourly/monthly charge of the stack with zero running hosts.

    ``account_dashboards``: dashboards the account already has; CloudWatch's first
    ``dashboards_free_per_account`` are free (AWS's always-free tier), so ours cost only beyond them.
    """
    resources: Resources = template["Resources"]
    hours = prices.hours_per_month
    items: list[IdleItem] = []

    interface = [
        p for p in _of_type(resources, "AWS::EC2::VPCEndpoint").values() if p.get("VpcEndpointType") == "Interface"
    ]
    az_endpoints = sum(len(p.get("SubnetIds", [])) for p in interface)
    unit = prices.interface_endpoint_az_hour * hours
    items.append(
        IdleItem(
            "endpoints",
            f"{len(interface)} interface endpoints, {az_endpoints} endpoint-AZs x "
            f"${prices.interface_endpoint_az_hour}/h",
            az_endpoints,
            unit,
            az_endpoints * unit,
        )
    )
    keys = len(_of_type(resources, "AWS::KMS::Key"))
    items.append(
        IdleItem("kms-keys", "KMS customer managed keys", keys, prices.kms_key_month, keys * prices.kms_key_month)
    )
    dashboards = len(_of_type(resources, "AWS::CloudWatch::Dashboard"))
    free = max(0, prices.dashboards_free_per_account - account_dashboards)
    charged = max(0, dashboards - free)
    items.append(
        IdleItem(
            "dashboards",
            f"CloudWatch dashboards ({dashboards}; first "
            f"{prices.dashboards_free_per_account} per account free, {account_dashboards} already there)",
            charged,
            prices.dashboard_month,
            charged * prices.dashboard_month,
        )
    )
    alarms = len(_of_type(resources, "AWS::CloudWatch::Alarm"))
    items.append(
        IdleItem(
            "alarms",
            "CloudWatch standard alarms",
            alarms,
            prices.standard_alarm_month,
            alarms * prices.standard_alarm_month,
        )
    )
    items.extend(_scheduled_lambdas(resources, prices))

    group_id, group = _group(resources)
    host = _host(resources, group, prices)
    max_instances = int(group.get("MaxSize", 0))
    pools = [
        p
        for p in _of_type(resources, "AWS::AutoScaling::WarmPool").values()
        if _ref(p.get("AutoScalingGroupName")) == group_id
    ]
    pool_size = 0
    if pools:
        pool = pools[0]
        prepared = int(pool.get("MaxGroupPreparedCapacity", max_instances))
        pool_size = max(int(pool.get("MinSize", 0)), prepared)  # at desired 0, prepared - 0 are parked
        state = pool.get("PoolState", "Stopped")
        if state != "Stopped":
            raise CostError(f"warm pool state {state!r} is not priced (only Stopped: EBS only)")
    unit = host.root_volume_gib * prices.gp3_gb_month
    items.append(
        IdleItem(
            "warm-pool",
            f"warm pool: stopped instances x {host.root_volume_gib:g} GiB gp3",
            pool_size,
            unit,
            pool_size * unit,
        )
    )
    items.append(
        IdleItem(
            "public-ipv4",
            "public IPv4 per running host (none run at zero; billed in compute)"
            if host.public_ipv4
            else "public IPv4: none (isolated subnets)",
            0,
            prices.public_ipv4_hour * hours if host.public_ipv4 else 0.0,
            0.0,
        )
    )
    return IdleReport(
        stack=stack,
        region=prices.region,
        prices_as_of=prices.as_of,
        items=tuple(
            IdleItem(i.kind, i.description, i.quantity, round(i.unit_usd, 4), round(i.monthly_usd, 4)) for i in items
        ),
        host=host,
        max_instances=max_instances,
        warm_pool_size=pool_size,
        through_endpoints=bool(interface),
    )


def _scheduled_lambdas(resources: Resources, prices: PriceTable) -> list[IdleItem]:
    items = []
    for rule in _of_type(resources, "AWS::Events::Rule").values():
        expression = rule.get("ScheduleExpression")
        if not expression:
            continue
        runs = _invocations_per_month(str(expression), prices.hours_per_month)
        for target in rule.get("Targets", []):
            function = resources.get(_ref(target.get("Arn")) or "", {})
            if function.get("Type") != "AWS::Lambda::Function":
                continue
            props = function["Properties"]
            gb = int(props.get("MemorySize", 128)) / 1024
            if props.get("Architectures", ["x86_64"]) != ["arm64"]:
                raise CostError("only arm64 Lambda duration is in the price table")
            per_run = (
                prices.lambda_per_million_requests / 1e6
                + SCHEDULED_LAMBDA_DURATION_S * gb * prices.lambda_arm64_gb_second
            )
            items.append(
                IdleItem(
                    "schedules",
                    f"scheduled Lambda {expression}: {runs:,.0f} runs x "
                    f"{SCHEDULED_LAMBDA_DURATION_S} s x {gb:g} GB arm64",
                    runs,
                    per_run,
                    runs * per_run,
                )
            )
    return items
