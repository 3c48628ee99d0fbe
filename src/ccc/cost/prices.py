"""The price table every cost figure of the project comes from (us-east-1 list prices, USD).

Why one table in the repo: the deploy guide's cost tables, `ccc cost idle` and `ccc cost simulate`
must agree, and a price change must be one reviewed edit with its date and source. The values are
AWS's published on-demand list prices for us-east-1 as recorded on ``AS_OF`` from the pages in
``SOURCES``; re-check them before relying on a figure, and add a table before pricing another region.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ccc.cost.errors import CostError

AS_OF = "2025-06-01"
REGION = "us-east-1"
SOURCES: Mapping[str, str] = MappingProxyType(
    {
        "ec2": "https://aws.amazon.com/ec2/pricing/on-demand/",
        "ebs": "https://aws.amazon.com/ebs/pricing/",
        "vpc": "https://aws.amazon.com/privatelink/pricing/ and https://aws.amazon.com/vpc/pricing/",
        "kms": "https://aws.amazon.com/kms/pricing/",
        "cloudwatch": "https://aws.amazon.com/cloudwatch/pricing/",
        "lambda": "https://aws.amazon.com/lambda/pricing/",
        "s3": "https://aws.amazon.com/s3/pricing/",
        "apigateway": "https://aws.amazon.com/api-gateway/pricing/",
        "sqs": "https://aws.amazon.com/sqs/pricing/",
        "dynamodb": "https://aws.amazon.com/dynamodb/pricing/on-demand/",
    }
)


@dataclass(frozen=True)
class PriceTable:
    region: str
    as_of: str
    hours_per_month: float
    interface_endpoint_az_hour: float
    endpoint_gb_processed: float
    nat_gateway_hour: float
    public_ipv4_hour: float
    kms_key_month: float
    kms_per_10k_requests: float
    dashboard_month: float
    dashboards_free_per_account: int
    standard_alarm_month: float
    lambda_arm64_gb_second: float
    lambda_per_million_requests: float
    gp3_gb_month: float
    s3_per_1k_put: float
    s3_per_1k_get: float
    api_rest_per_million: float
    sqs_per_million: float
    dynamodb_per_million_writes: float
    dynamodb_per_million_reads: float
    ec2_on_demand_hour: Mapping[str, float] = field(default_factory=dict)

    def instance_hour(self, instance_type: str) -> float:
        try:
            return self.ec2_on_demand_hour[instance_type]
        except KeyError:
            raise CostError(f"no on-demand price for {instance_type} in the price table ({self.region})") from None


US_EAST_1 = PriceTable(
    region=REGION,
    as_of=AS_OF,
    hours_per_month=730.0,
    interface_endpoint_az_hour=0.01,
    endpoint_gb_processed=0.01,
    nat_gateway_hour=0.045,
    public_ipv4_hour=0.005,
    kms_key_month=1.00,
    kms_per_10k_requests=0.03,
    dashboard_month=3.00,
    dashboards_free_per_account=3,
    standard_alarm_month=0.10,
    lambda_arm64_gb_second=0.0000133334,
    lambda_per_million_requests=0.20,
    gp3_gb_month=0.08,
    s3_per_1k_put=0.005,
    s3_per_1k_get=0.0004,
    api_rest_per_million=3.50,
    sqs_per_million=0.40,
    dynamodb_per_million_writes=0.625,
    dynamodb_per_million_reads=0.125,
    ec2_on_demand_hour=MappingProxyType(
        {
            "c6i.xlarge": 0.170,
            "c5.xlarge": 0.170,
            "m6i.xlarge": 0.192,
            "m5.xlarge": 0.192,
            "r6i.xlarge": 0.252,
        }
    ),
)

TABLES: Mapping[str, PriceTable] = MappingProxyType({REGION: US_EAST_1})


def price_table(region: str) -> PriceTable:
    try:
        return TABLES[region]
    except KeyError:
        raise CostError(f"no price table for region {region!r} (have: {', '.join(sorted(TABLES))})") from None


# What one job asks of the pay-per-request services (1 MiB image; request counts from the pipeline:
# docs/deploy.md "Per job"): KMS client GenerateDataKey + enclave Decrypt + GenerateDataKey + client
# Decrypt; S3 3 PUT (input, result, attestation) + 3 GET; API create, poll, fetch; ~6 Lambda
# invocations of ~0.1 s at 512 MB; DynamoDB ~4 writes + ~2 reads; SQS receive, visibility, delete.
KMS_REQUESTS_PER_JOB = 4
S3_PUTS_PER_JOB = 3
S3_GETS_PER_JOB = 3
API_REQUESTS_PER_JOB = 3
LAMBDA_INVOCATIONS_PER_JOB = 6
LAMBDA_GB_SECONDS_PER_INVOCATION = 0.1 * 0.5
DYNAMODB_WRITES_PER_JOB = 4
DYNAMODB_READS_PER_JOB = 2
SQS_REQUESTS_PER_JOB = 4
ENDPOINT_GB_PER_JOB = 0.003  # ~3 MB through interface endpoints (endpoints mode only)


def request_cost_per_job(prices: PriceTable, *, through_endpoints: bool) -> float:
    """USD of the pay-per-request services one job uses (compute excluded)."""
    lambda_usd = LAMBDA_INVOCATIONS_PER_JOB * (
        prices.lambda_per_million_requests / 1e6 + LAMBDA_GB_SECONDS_PER_INVOCATION * prices.lambda_arm64_gb_second
    )
    total = (
        KMS_REQUESTS_PER_JOB * prices.kms_per_10k_requests / 1e4
        + S3_PUTS_PER_JOB * prices.s3_per_1k_put / 1e3
        + S3_GETS_PER_JOB * prices.s3_per_1k_get / 1e3
        + API_REQUESTS_PER_JOB * prices.api_rest_per_million / 1e6
        + lambda_usd
        + DYNAMODB_WRITES_PER_JOB * prices.dynamodb_per_million_writes / 1e6
        + DYNAMODB_READS_PER_JOB * prices.dynamodb_per_million_reads / 1e6
        + SQS_REQUESTS_PER_JOB * prices.sqs_per_million / 1e6
    )
    if through_endpoints:
        total += ENDPOINT_GB_PER_JOB * prices.endpoint_gb_processed
    return total
