"""The enclave fleet: the VPC in one of two network modes, the launch template, the Auto Scaling
group (min 0) with its warm pool and lifecycle hooks, and the parent role's permissions.

Why no NAT in either mode: the hosts only talk to AWS APIs, and the enclave's single path out is
vsock-proxy to the regional KMS endpoint. ``endpoints`` mode makes that work in isolated subnets
through interface endpoints, billed per endpoint per AZ-hour even at zero instances; ``public``
mode gives each *running* host a public IPv4 address in a subnet with an internet gateway and no
inbound rule, so a fleet at zero costs nothing in networking (docs/deploy.md argues the security
side: the enclave's confidentiality rests on attestation + KMS, not on the network path).

Why a warm pool (pool state Stopped, reuse on scale-in): scale-out from zero resumes an instance
that already ran the install half of the bootstrap (cdk/user_data.py) instead of installing
packages on the critical path; a stopped instance costs only its EBS volume. The launch hook holds
a new instance in ``Warmed:Pending:Wait`` until install has finished (the start script completes
it), and again in ``Pending:Wait`` on resume until the services run; the termination hook, which
Auto Scaling also fires when reuse-on-scale-in returns an instance to the pool, lets the parent
agent drain first.
"""

from __future__ import annotations

from aws_cdk import Aws, Duration
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from ccc_common.domain.iam_policies import parent_statements
from cdk import contract
from cdk.iam_grants import attach, policy_resources
from cdk.identities import s3_via_service
from cdk.measurements import Measurements
from cdk.stage_config import NetworkMode, StageConfig
from cdk.user_data import HostSettings, render

# What the CloudWatch agent needs to forward traces (the AWSXrayWriteOnlyAccess actions).
XRAY_WRITE_ACTIONS = (
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "xray:GetSamplingStatisticSummaries",
)

INTERFACE_ENDPOINTS: dict[str, ec2.InterfaceVpcEndpointAwsService] = {
    "Sqs": ec2.InterfaceVpcEndpointAwsService.SQS,
    "Kms": ec2.InterfaceVpcEndpointAwsService.KMS,
    "Sts": ec2.InterfaceVpcEndpointAwsService.STS,
    "Logs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
    "Monitoring": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_MONITORING,
    "Ssm": ec2.InterfaceVpcEndpointAwsService.SSM,
    "SsmMessages": ec2.InterfaceVpcEndpointAwsService.SSM_MESSAGES,
    "Ec2Messages": ec2.InterfaceVpcEndpointAwsService.EC2_MESSAGES,
    "AutoScaling": ec2.InterfaceVpcEndpointAwsService.AUTOSCALING,
    "XRay": ec2.InterfaceVpcEndpointAwsService.XRAY,  # the CloudWatch agent's OTLP traces
}


# The CloudWatch agent's EMF listener (`"logs": {"metrics_collected": {"emf": {}}}` in its
# configuration, cdk/user_data.py) and the log group it writes EMF documents to: the agent's fixed
# default, `emf/logs/default` (it has no setting for another group), created by the agent on first use.
EMF_TARGET = "tcp://127.0.0.1:25888"
EMF_LOG_GROUP = "emf/logs/default"


# Install (packages, release download, wheel install) must fit in the launch hook's heartbeat.
LAUNCH_HEARTBEAT_S = 900


def launch_hook_name(config: StageConfig) -> str:
    return f"{config.names.lifecycle_hook}-launch"


def emf_log_group_arns() -> list[str]:
    group = f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:{EMF_LOG_GROUP}"
    return [group, f"{group}:log-stream:*"]


def parent_config(
    config: StageConfig, work_queue: sqs.IQueue, inbox: s3.IBucket, results: s3.IBucket, jobs_table: dynamodb.ITable
) -> dict:
    """The parent agent's JSON configuration (format: enclave_worker/parent/agent_config.py).

    No credentials (the agent uses the instance role via IMDSv2), no endpoint overrides (the VPC
    endpoints' private DNS makes the regional names resolve privately), KMS region = this region
    (the enclave reaches it through its relay -> vsock-proxy -> the KMS interface endpoint).
    Metrics go as EMF to the host's CloudWatch agent (``EMF_TARGET``), which turns them into the
    CloudWatch metrics the dashboard and alarms read; without ``telemetry.emf`` the agent publishes none.
    ``jobs_table`` switches on job leases (a worker claims a job in the jobs table before running the
    enclave), so a duplicate SQS delivery does not cost a second enclave run.
    """
    names = config.names
    return {
        "stage": config.stage,
        "region": Aws.REGION,
        "queue_url": work_queue.queue_url,
        "inbox_bucket": inbox.bucket_name,
        "results_bucket": results.bucket_name,
        "jobs_table": jobs_table.table_name,
        "enclave": {"uri": f"vsock://{contract.ENCLAVE_CID_VALUE}:{contract.ENCLAVE_PORT_VALUE}"},
        "kms": {"region": Aws.REGION},
        "lifecycle": {"group_name": names.fleet_group, "hook_name": names.lifecycle_hook},
        "telemetry": {"emf": EMF_TARGET, "namespace": names.metrics_namespace},
        "log_level": "INFO",
    }


class Fleet(Construct):
    """Network, hosts and their permissions."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        role: iam.Role,
        measurements: Measurements,
        work_queue: sqs.IQueue,
        inbox: s3.IBucket,
        results: s3.IBucket,
        jobs_table: dynamodb.ITable,
        artifacts: s3.IBucket,
        access_logs: s3.IBucket,
        storage_key: kms.IKey,
        data_key_arn: str,  # the operator-run key, or a note that keys are tenant-owned
    ) -> None:
        super().__init__(scope, construct_id)
        public = config.network is NetworkMode.PUBLIC
        subnet_type = ec2.SubnetType.PUBLIC if public else ec2.SubnetType.PRIVATE_ISOLATED
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr("10.40.0.0/16"),
            max_azs=config.max_azs,
            nat_gateways=0,
            # Restricting the default SG takes a custom-resource Lambda; nothing here uses the default SG.
            restrict_default_security_group=False,
            subnet_configuration=[
                # public: a public IPv4 per running host (billed only while it runs), no inbound rule.
                ec2.SubnetConfiguration(
                    name="enclave-hosts", subnet_type=subnet_type, cidr_mask=22, map_public_ip_on_launch=public or None
                )
            ],
        )
        self.vpc.add_flow_log(
            "FlowLogs",
            destination=ec2.FlowLogDestination.to_s3(access_logs, "vpc-flow-logs/"),
            traffic_type=ec2.FlowLogTrafficType.REJECT,
        )
        subnets = ec2.SubnetSelection(subnet_type=subnet_type)
        # Free in both modes, and keeps S3 traffic (releases, inbox, results, dnf repositories) off the internet.
        self.vpc.add_gateway_endpoint("S3", service=ec2.GatewayVpcEndpointAwsService.S3, subnets=[subnets])
        # The job leases (parent config ``jobs_table``): free in both modes, and the only route to DynamoDB
        # from the isolated subnets of ``endpoints`` mode.
        self.vpc.add_gateway_endpoint(
            "DynamoDb", service=ec2.GatewayVpcEndpointAwsService.DYNAMODB, subnets=[subnets]
        )
        self.security_group = ec2.SecurityGroup(
            self,
            "HostSecurityGroup",
            vpc=self.vpc,
            description=(
                "CCC enclave hosts: no inbound; HTTPS out to AWS public endpoints"
                if public
                else "CCC enclave hosts: no inbound; HTTPS out, which only reaches VPC endpoints"
            ),
            allow_all_outbound=False,
        )
        # public: 443 out only (no DNS-over-anything-else, no plain HTTP); isolated: 443 reaches endpoints and S3.
        self.security_group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "AWS APIs over HTTPS only")
        self.endpoints: dict[str, ec2.InterfaceVpcEndpoint] = {}
        if not public:
            self._add_interface_endpoints(subnets)
        self._build_hosts(
            config, role, measurements, work_queue, inbox, results, jobs_table, artifacts, data_key_arn, subnets
        )
        self._grant_parent(config, role, work_queue, inbox, results, jobs_table, artifacts, storage_key)

    def _add_interface_endpoints(self, subnets: ec2.SubnetSelection) -> None:
        self.endpoint_security_group = ec2.SecurityGroup(
            self,
            "EndpointSecurityGroup",
            vpc=self.vpc,
            description="CCC interface endpoints: HTTPS from the enclave hosts only",
            allow_all_outbound=False,
        )
        self.endpoint_security_group.add_ingress_rule(
            self.security_group, ec2.Port.tcp(443), "enclave hosts to AWS APIs"
        )
        self.endpoints = {
            name: self.vpc.add_interface_endpoint(
                name,
                service=service,
                subnets=subnets,
                private_dns_enabled=True,
                open=False,
                security_groups=[self.endpoint_security_group],
            )
            for name, service in INTERFACE_ENDPOINTS.items()
        }

    def _build_hosts(
        self,
        config: StageConfig,
        role: iam.Role,
        measurements: Measurements,
        work_queue: sqs.IQueue,
        inbox: s3.IBucket,
        results: s3.IBucket,
        jobs_table: dynamodb.ITable,
        artifacts: s3.IBucket,
        data_key_arn: str,
        subnets: ec2.SubnetSelection,
    ) -> None:
        names = config.names
        fleet = config.settings.fleet
        self.launch_hook_name = launch_hook_name(config)
        self.log_group = logs.LogGroup(
            self, "HostLogs", retention=config.log_retention, removal_policy=config.removal_policy
        )
        environment = {
            contract.STAGE: config.stage,
            contract.AWS_REGION: Aws.REGION,
            contract.HOST_METRICS_NAMESPACE: names.metrics_namespace,
            contract.WORK_QUEUE_URL: work_queue.queue_url,
            contract.INBOX_BUCKET: inbox.bucket_name,
            contract.RESULTS_BUCKET: results.bucket_name,
            contract.FLEET_GROUP: names.fleet_group,
            contract.LIFECYCLE_HOOK: names.lifecycle_hook,
            contract.DATA_KEY_ARN: data_key_arn,
            contract.ENCLAVE_CID: str(contract.ENCLAVE_CID_VALUE),
            contract.ENCLAVE_PORT: str(contract.ENCLAVE_PORT_VALUE),
            contract.KMS_PROXY_PORT: str(contract.KMS_PROXY_PORT_VALUE),
        }
        assert set(environment) == set(contract.PARENT_ENV)
        self.parent_config = parent_config(config, work_queue, inbox, results, jobs_table)
        self.user_data_script = render(
            HostSettings(
                region=Aws.REGION,
                artifacts_bucket=artifacts.bucket_name,
                release_id=measurements.release_id,
                log_group=self.log_group.log_group_name,
                enclave_cpu_count=config.enclave_cpu_count,
                enclave_memory_mib=config.enclave_memory_mib,
                environment=environment,
                parent_config=self.parent_config,
                fleet_group=names.fleet_group,
                launch_hook=self.launch_hook_name,
            )
        )
        self.launch_template = ec2.LaunchTemplate(
            self,
            "LaunchTemplate",
            machine_image=ec2.MachineImage.latest_amazon_linux2023(),
            role=role,
            security_group=self.security_group,
            instance_type=ec2.InstanceType(config.instance_types[0]) if config.warm_pool_size else None,
            user_data=ec2.UserData.custom(self.user_data_script),
            nitro_enclave_enabled=True,
            require_imdsv2=True,
            http_put_response_hop_limit=1,  # only the host itself reads IMDS; the enclave never does
            http_tokens=ec2.LaunchTemplateHttpTokens.REQUIRED,
            instance_metadata_tags=False,
            detailed_monitoring=False,
            block_devices=[
                ec2.BlockDevice(
                    device_name="/dev/xvda",
                    volume=ec2.BlockDeviceVolume.ebs(
                        config.root_volume_gib,
                        encrypted=True,
                        volume_type=ec2.EbsDeviceVolumeType.GP3,
                        delete_on_termination=True,
                    ),
                )
            ],
        )
        # A warm pool refuses a mixed instances policy (and spot): launch from the template directly.
        mixed = None if config.warm_pool_size else self._mixed_instances(config, self.launch_template)
        self.group = autoscaling.AutoScalingGroup(
            self,
            "Group",
            auto_scaling_group_name=names.fleet_group,
            vpc=self.vpc,
            vpc_subnets=subnets,
            min_capacity=0,
            max_capacity=fleet.max_instances,
            launch_template=self.launch_template if mixed is None else None,
            mixed_instances_policy=mixed,
            capacity_rebalance=config.use_spot,
            group_metrics=[autoscaling.GroupMetrics.all()],
            health_checks=autoscaling.HealthChecks.ec2(grace_period=Duration.minutes(10)),
            update_policy=autoscaling.UpdatePolicy.rolling_update(min_instances_in_service=0),
        )
        self.group.add_lifecycle_hook(
            "Drain",
            lifecycle_hook_name=names.lifecycle_hook,
            lifecycle_transition=autoscaling.LifecycleTransition.INSTANCE_TERMINATING,
            heartbeat_timeout=Duration.seconds(config.lifecycle_heartbeat_s),
            default_result=autoscaling.DefaultResult.CONTINUE,
        )
        # Install must finish before an instance is parked (Warmed:Pending:Wait) or served (Pending:Wait);
        # if it never reports, ABANDON replaces the instance rather than parking a half-installed one.
        self.group.add_lifecycle_hook(
            "Launch",
            lifecycle_hook_name=self.launch_hook_name,
            lifecycle_transition=autoscaling.LifecycleTransition.INSTANCE_LAUNCHING,
            heartbeat_timeout=Duration.seconds(LAUNCH_HEARTBEAT_S),
            default_result=autoscaling.DefaultResult.ABANDON,
        )
        self.warm_pool: autoscaling.WarmPool | None = None
        if config.warm_pool_size:
            # Pool target = max(min, prepared - desired): at zero it holds warm_pool_size; a resume does not
            # launch a replacement while the resumed host serves, and reuse-on-scale-in parks it again.
            self.warm_pool = self.group.add_warm_pool(
                min_size=0,
                max_group_prepared_capacity=config.warm_pool_size,
                pool_state=autoscaling.PoolState.STOPPED,
                reuse_on_scale_in=True,
            )

    @staticmethod
    def _mixed_instances(config: StageConfig, template: ec2.LaunchTemplate) -> autoscaling.MixedInstancesPolicy:
        """Without a warm pool: several types, spot in dev (capacity is likelier across families)."""
        return autoscaling.MixedInstancesPolicy(
            launch_template=template,
            launch_template_overrides=[
                autoscaling.LaunchTemplateOverrides(instance_type=ec2.InstanceType(t))
                for t in config.instance_types
            ],
            instances_distribution=autoscaling.InstancesDistribution(
                on_demand_base_capacity=0,
                on_demand_percentage_above_base_capacity=0 if config.use_spot else 100,
                on_demand_allocation_strategy=autoscaling.OnDemandAllocationStrategy.LOWEST_PRICE,
                spot_allocation_strategy=autoscaling.SpotAllocationStrategy.PRICE_CAPACITY_OPTIMIZED,
            ),
        )

    def _grant_parent(
        self,
        config: StageConfig,
        role: iam.Role,
        work_queue: sqs.IQueue,
        inbox: s3.IBucket,
        results: s3.IBucket,
        jobs_table: dynamodb.ITable,
        artifacts: s3.IBucket,
        storage_key: kms.IKey,
    ) -> None:
        """What the host may do. Deliberately absent: any right on the data key (the key policy,
        with its attestation conditions, is the only grant) and any right on other tenants' data
        beyond reading the inbox and writing results."""
        # Queue, inbox, results, release, job leases, drain hook, metrics: the shared builder's statements
        # (ccc_common.domain.iam_policies.parent_statements), which the local stack enforces as well.
        shared = policy_resources(
            config, inbox_bucket_arn=inbox.bucket_arn, results_bucket_arn=results.bucket_arn,
            artifacts_bucket_arn=artifacts.bucket_arn, work_queue_arn=work_queue.queue_arn,
            jobs_table_arn=jobs_table.table_arn,
        )
        attach(role, parent_statements(shared))
        # Reads from the SSE-KMS inbox and artifacts buckets; writes to the SSE-S3 results bucket need none.
        role.add_to_policy(s3_via_service(storage_key, ["kms:Decrypt"], [inbox, artifacts]))
        self.log_group.grant_write(role)
        # EMF: the CloudWatch agent creates the stream <instance id> in its EMF log group and puts the
        # parent's metric documents there; CloudWatch extracts the metrics (no PutMetricData involved).
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                resources=emf_log_group_arns(),
            )
        )
        # Traces: the CloudWatch agent receives the host's OTLP spans (cdk/user_data.py) and sends them
        # to X-Ray. X-Ray's write actions have no resource-level permissions.
        role.add_to_policy(iam.PolicyStatement(actions=list(XRAY_WRITE_ACTIONS), resources=["*"]))
        # Session Manager for operators: a shell on the host (never inside the enclave). Inline and
        # minimal instead of AmazonSSMManagedInstanceCore, which also reads every SSM parameter.
        role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "ssm:UpdateInstanceInformation",
                    "ssmmessages:CreateControlChannel",
                    "ssmmessages:CreateDataChannel",
                    "ssmmessages:OpenControlChannel",
                    "ssmmessages:OpenDataChannel",
                    "ec2messages:AcknowledgeMessage",
                    "ec2messages:DeleteMessage",
                    "ec2messages:FailMessage",
                    "ec2messages:GetEndpoint",
                    "ec2messages:GetMessages",
                    "ec2messages:SendReply",
                ],
                resources=["*"],  # these APIs have no resource-level permissions
            )
        )
