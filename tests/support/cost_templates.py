"""Small hand-built CloudFormation templates for the cost tool's unit tests (the CDK ones are in
tests/infra): each resource the idle pricer reads, with counts the tests choose."""

from __future__ import annotations

from typing import Any


def template(
    *,
    interface_endpoints: int = 0,
    azs: int = 1,
    keys: int = 2,
    dashboards: int = 1,
    alarms: int = 3,
    warm_pool: int | None = 1,
    root_gib: int = 30,
    public: bool = True,
    instance_type: str = "c6i.xlarge",
    max_size: int = 2,
) -> dict[str, Any]:
    resources: dict[str, Any] = {}
    subnets = [f"Subnet{i}" for i in range(azs)]
    for name in subnets:
        resources[name] = {"Type": "AWS::EC2::Subnet", "Properties": {"MapPublicIpOnLaunch": public}}
    for i in range(interface_endpoints):
        resources[f"Endpoint{i}"] = {
            "Type": "AWS::EC2::VPCEndpoint",
            "Properties": {"VpcEndpointType": "Interface", "SubnetIds": [{"Ref": s} for s in subnets]},
        }
    resources["S3Endpoint"] = {"Type": "AWS::EC2::VPCEndpoint", "Properties": {"VpcEndpointType": "Gateway"}}
    for i in range(keys):
        resources[f"Key{i}"] = {"Type": "AWS::KMS::Key", "Properties": {}}
    for i in range(dashboards):
        resources[f"Dashboard{i}"] = {"Type": "AWS::CloudWatch::Dashboard", "Properties": {}}
    for i in range(alarms):
        resources[f"Alarm{i}"] = {"Type": "AWS::CloudWatch::Alarm", "Properties": {}}
    resources["Scaler"] = {
        "Type": "AWS::Lambda::Function",
        "Properties": {"MemorySize": 512, "Architectures": ["arm64"]},
    }
    resources["Schedule"] = {
        "Type": "AWS::Events::Rule",
        "Properties": {"ScheduleExpression": "rate(1 minute)", "Targets": [{"Arn": {"Fn::GetAtt": ["Scaler", "Arn"]}}]},
    }
    resources["EventRule"] = {"Type": "AWS::Events::Rule", "Properties": {"EventPattern": {"source": ["aws.s3"]}}}
    resources["LaunchTemplate"] = {
        "Type": "AWS::EC2::LaunchTemplate",
        "Properties": {
            "LaunchTemplateData": {
                "InstanceType": instance_type,
                "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": root_gib}}],
            }
        },
    }
    resources["Group"] = {
        "Type": "AWS::AutoScaling::AutoScalingGroup",
        "Properties": {
            "MinSize": "0",
            "MaxSize": str(max_size),
            "LaunchTemplate": {"LaunchTemplateId": {"Ref": "LaunchTemplate"}},
            "VPCZoneIdentifier": [{"Ref": s} for s in subnets],
        },
    }
    if warm_pool is not None:
        resources["Pool"] = {
            "Type": "AWS::AutoScaling::WarmPool",
            "Properties": {
                "AutoScalingGroupName": {"Ref": "Group"},
                "MinSize": 0,
                "MaxGroupPreparedCapacity": warm_pool,
                "PoolState": "Stopped",
            },
        }
    return {"Resources": resources}
