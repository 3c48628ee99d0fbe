"""Security properties of the synthesised stacks, asserted on the CloudFormation templates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ccc_common.contracts import jobs_table
from ccc_common.domain.key_policy import lint_key_policy
from ccc_common.domain.naming import PROJECT
from ccc_common.domain.settings import stage_settings
from cdk import contract
from cdk.stage_config import (
    ENCLAVE_INSTANCE_TYPES,
    TAG_STAGE,
    WARM_POOL_INSTANCE_TYPE,
    NetworkMode,
    StageConfigError,
    stage_config,
)
from tests.infra.iam_helpers import (
    as_list,
    forbidden_lambda_kms,
    function_role_id,
    grants,
    kms_statements,
    lambda_role_ids,
    managed_policy_arns,
    normalise,
    role_statements,
)

REPO_ROOT = Path(__file__).resolve().parents[2]

# --- fleet -----------------------------------------------------------------------------------------


def _launch_template(synth: Any) -> dict[str, Any]:
    (template,) = synth.of_type("AWS::EC2::LaunchTemplate").values()
    return template["Properties"]["LaunchTemplateData"]


def _group(synth: Any) -> dict[str, Any]:
    (group,) = synth.of_type("AWS::AutoScaling::AutoScalingGroup").values()
    return group["Properties"]


def test_fleet_scales_to_zero_and_caps_at_the_settings_maximum(synth: Any) -> None:
    group = _group(synth)
    assert group["MinSize"] == "0"
    assert group["MaxSize"] == str(stage_settings(synth.stage).fleet.max_instances)
    assert "DesiredCapacity" not in group, "a deploy must never reset what the scaler decided"
    assert group["AutoScalingGroupName"] == synth.stack.config.names.fleet_group


def test_launch_template_enables_enclaves_and_requires_imdsv2(synth: Any) -> None:
    data = _launch_template(synth)
    assert data["EnclaveOptions"] == {"Enabled": True}
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert data["MetadataOptions"]["HttpPutResponseHopLimit"] == 1


def test_every_ebs_volume_is_encrypted(synth: Any) -> None:
    mappings = _launch_template(synth)["BlockDeviceMappings"]
    assert mappings
    assert all(m["Ebs"]["Encrypted"] is True for m in mappings)


def test_instance_types_are_enclave_capable_and_purchase_option_follows_stage(dev_without_warm_pool: Any) -> None:
    synth = dev_without_warm_pool
    assert not synth.of_type("AWS::AutoScaling::WarmPool")
    policy = _group(synth)["MixedInstancesPolicy"]
    types = [o["InstanceType"] for o in policy["LaunchTemplate"]["Overrides"]]
    assert types and set(types) <= set(ENCLAVE_INSTANCE_TYPES)
    # >= 4 vCPUs: the enclave takes whole cores and the host keeps some.
    assert all(t.split(".")[1] in ("xlarge", "2xlarge", "4xlarge") for t in types)
    on_demand = policy["InstancesDistribution"]["OnDemandPercentageAboveBaseCapacity"]
    assert on_demand == (0 if synth.stage == "dev" else 100)


def test_warm_pool_group_launches_one_enclave_capable_type_on_demand(synth: Any) -> None:
    # Auto Scaling refuses a warm pool on a group with a mixed instances policy or spot.
    group = _group(synth)
    assert "MixedInstancesPolicy" not in group
    assert group["LaunchTemplate"]["LaunchTemplateId"] == {"Ref": synth.logical_id(synth.stack.fleet.launch_template)}
    data = _launch_template(synth)
    assert data["InstanceType"] == WARM_POOL_INSTANCE_TYPE in ENCLAVE_INSTANCE_TYPES
    assert "InstanceMarketOptions" not in data
    (pool,) = synth.of_type("AWS::AutoScaling::WarmPool").values()
    props = pool["Properties"]
    assert props["PoolState"] == "Stopped"
    assert props["InstanceReusePolicy"] == {"ReuseOnScaleIn": True}
    # At desired 0 the pool holds MaxGroupPreparedCapacity; MinSize 0 so a resume does not launch a spare.
    assert props["MinSize"] == 0 and props["MaxGroupPreparedCapacity"] == synth.stack.config.warm_pool_size >= 1
    assert props["AutoScalingGroupName"] == {"Ref": synth.logical_id(synth.stack.fleet.group)}


def _hooks(synth: Any) -> dict[str, dict[str, Any]]:
    hooks = [h["Properties"] for h in synth.of_type("AWS::AutoScaling::LifecycleHook").values()]
    return {h["LifecycleTransition"]: h for h in hooks}


def test_termination_hook_outlasts_a_visibility_timeout(synth: Any) -> None:
    props = _hooks(synth)["autoscaling:EC2_INSTANCE_TERMINATING"]
    assert props["LifecycleHookName"] == synth.stack.config.names.lifecycle_hook
    assert props["HeartbeatTimeout"] > stage_settings(synth.stage).queue.visibility_timeout_s
    assert props["DefaultResult"] == "CONTINUE"


def test_launch_hook_holds_instances_until_the_start_script_completes_it(synth: Any) -> None:
    hooks = _hooks(synth)
    assert set(hooks) == {"autoscaling:EC2_INSTANCE_TERMINATING", "autoscaling:EC2_INSTANCE_LAUNCHING"}
    launch = hooks["autoscaling:EC2_INSTANCE_LAUNCHING"]
    assert launch["LifecycleHookName"] == synth.stack.fleet.launch_hook_name
    assert launch["DefaultResult"] == "ABANDON"  # never park or serve a half-installed instance
    assert launch["HeartbeatTimeout"] >= 600
    # The start script completes exactly this hook on this group.
    script = synth.stack.fleet.user_data_script
    assert f"--lifecycle-hook-name {launch['LifecycleHookName']}" in script
    assert f"--auto-scaling-group-name {synth.stack.config.names.fleet_group}" in script


def test_hosts_have_no_internet_path_in_endpoints_mode(endpoints_mode: Any) -> None:
    synth = endpoints_mode
    assert synth.stack.config.network is NetworkMode.ENDPOINTS
    assert not synth.of_type("AWS::EC2::NatGateway")
    assert not synth.of_type("AWS::EC2::InternetGateway")
    subnets = synth.of_type("AWS::EC2::Subnet").values()
    assert all(s["Properties"].get("MapPublicIpOnLaunch") in (None, False) for s in subnets)
    services = set()
    for endpoint in synth.of_type("AWS::EC2::VPCEndpoint").values():
        name = json.dumps(endpoint["Properties"]["ServiceName"])
        services.add(name.rsplit(".", 1)[-1].strip('"]}'))
    for needed in (
        "s3",
        "dynamodb",
        "sqs",
        "kms",
        "sts",
        "logs",
        "monitoring",
        "ssm",
        "ssmmessages",
        "ec2messages",
        "autoscaling",
    ):
        assert any(s.endswith(needed) for s in services), f"no VPC endpoint for {needed}: {services}"


def test_public_mode_has_no_interface_endpoint_no_nat_and_no_inbound(public_mode: Any) -> None:
    synth = public_mode
    assert synth.stack.config.network is NetworkMode.PUBLIC
    assert not synth.of_type("AWS::EC2::NatGateway")
    endpoints = [e["Properties"] for e in synth.of_type("AWS::EC2::VPCEndpoint").values()]
    # S3 and DynamoDB (job leases) only: gateway endpoints are free and keep that traffic off the internet.
    assert [e.get("VpcEndpointType") for e in endpoints] == ["Gateway", "Gateway"]
    assert sorted(json.dumps(e["ServiceName"]).rsplit(".", 1)[-1].strip('"]}') for e in endpoints) == ["dynamodb", "s3"]
    assert len(synth.of_type("AWS::EC2::InternetGateway")) == 1
    subnets = synth.of_type("AWS::EC2::Subnet").values()
    assert subnets and all(s["Properties"]["MapPublicIpOnLaunch"] is True for s in subnets)
    host_sg = synth.resources[synth.logical_id(synth.stack.fleet.security_group)]["Properties"]
    assert not host_sg.get("SecurityGroupIngress")
    assert not [r for r in synth.of_type("AWS::EC2::SecurityGroupIngress").values()]
    (egress,) = host_sg["SecurityGroupEgress"]
    assert (egress["IpProtocol"], egress["FromPort"], egress["ToPort"]) == ("tcp", 443, 443)
    # The instance role's credentials stay on the host: IMDSv2 only, one hop (the enclave never reaches IMDS).
    metadata = _launch_template(synth)["MetadataOptions"]
    assert metadata["HttpTokens"] == "required" and metadata["HttpPutResponseHopLimit"] == 1


def test_network_mode_defaults_follow_the_stage(dev: Any, prod: Any, dev_endpoints: Any, prod_public: Any) -> None:
    assert dev.stack.config.network is NetworkMode.PUBLIC
    assert prod.stack.config.network is NetworkMode.ENDPOINTS
    assert dev_endpoints.stack.config.network is NetworkMode.ENDPOINTS
    assert prod_public.stack.config.network is NetworkMode.PUBLIC
    with pytest.raises(StageConfigError, match="network"):
        stage_config("dev", network="nat")


def test_endpoint_security_group_admits_only_the_hosts(endpoints_mode: Any) -> None:
    synth = endpoints_mode
    fleet = synth.stack.fleet
    endpoint_sg = synth.logical_id(fleet.endpoint_security_group)
    host_sg = synth.logical_id(fleet.security_group)
    ingress = [
        r["Properties"]
        for r in synth.of_type("AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"] == {"Fn::GetAtt": [endpoint_sg, "GroupId"]}
    ]
    inline = synth.resources[endpoint_sg]["Properties"].get("SecurityGroupIngress", [])
    rules = ingress + inline
    assert rules
    assert all(r.get("SourceSecurityGroupId") == {"Fn::GetAtt": [host_sg, "GroupId"]} for r in rules)
    assert not synth.resources[host_sg]["Properties"].get("SecurityGroupIngress")


# --- the data key ------------------------------------------------------------------------------------


def _data_key(synth: Any) -> dict[str, Any]:
    return synth.resources[synth.logical_id(synth.stack.keys.data_key)]["Properties"]


def _expected_pcrs(synth: Any) -> dict[int, str]:
    return dict(synth.stack.inputs.measurements.pcrs)


def test_deployed_key_policy_is_exactly_the_shared_builders(dev: Any) -> None:
    synth = dev  # the operator-run key exists in dev only (prod: tenant-owned keys)
    built = synth.stack.resolve(synth.stack.keys.policy_document)
    assert normalise(_data_key(synth)["KeyPolicy"]) == normalise(built)


def test_deployed_key_policy_passes_the_shared_linter(dev: Any) -> None:
    synth = dev  # the operator-run key exists in dev only (prod: tenant-owned keys)
    assert lint_key_policy(_data_key(synth)["KeyPolicy"], expected_pcrs=_expected_pcrs(synth)) == []


def test_parent_role_gets_key_material_only_with_attestation(dev: Any) -> None:
    synth = dev  # the operator-run key exists in dev only (prod: tenant-owned keys)
    parent = {"Fn::GetAtt": [synth.logical_id(synth.stack.identities.parent_role), "Arn"]}
    pcrs = _expected_pcrs(synth)
    statements = as_list(_data_key(synth)["KeyPolicy"]["Statement"])
    naming_parent = [s for s in statements if parent in as_list(s["Principal"]["AWS"])]
    assert naming_parent
    releasing = [s for s in naming_parent if grants(s, "kms:Decrypt") or grants(s, "kms:GenerateDataKey")]
    assert len(releasing) == 1
    conditions = releasing[0]["Condition"]
    assert list(conditions) == ["StringEqualsIgnoreCase"]
    pinned = conditions["StringEqualsIgnoreCase"]
    assert pinned["kms:RecipientAttestation:ImageSha384"] == pcrs[0]
    for index, value in pcrs.items():
        if index:
            assert pinned[f"kms:RecipientAttestation:PCR{index}"] == value
    others = [s for s in naming_parent if s is not releasing[0]]
    assert all(as_list(s["Action"]) == ["kms:DescribeKey"] for s in others)


def test_no_principal_decrypts_with_the_data_key_unconditionally(dev: Any) -> None:
    synth = dev  # the operator-run key exists in dev only (prod: tenant-owned keys)
    for statement in as_list(_data_key(synth)["KeyPolicy"]["Statement"]):
        if grants(statement, "kms:Decrypt"):
            assert statement.get("Condition"), statement["Sid"]
        assert not grants(statement, "kms:CreateGrant"), "a grant would bypass the attestation conditions"


def test_keys_rotate_and_the_alias_comes_from_naming(synth: Any) -> None:
    for key in synth.of_type("AWS::KMS::Key").values():
        assert key["Properties"]["EnableKeyRotation"] is True
    aliases = [a["Properties"]["AliasName"] for a in synth.of_type("AWS::KMS::Alias").values()]
    assert aliases == ([synth.stack.config.names.key_alias] if synth.stack.keys.data_key is not None else [])


def test_tenant_roles_are_the_tenant_principals_of_the_key_policy(dev: Any) -> None:
    synth = dev  # the operator-run key exists in dev only (prod: tenant-owned keys)
    statements = as_list(_data_key(synth)["KeyPolicy"]["Statement"])
    for tenant, role in synth.stack.identities.tenant_roles.items():
        arn = {"Fn::GetAtt": [synth.logical_id(role), "Arn"]}
        mine = [s for s in statements if arn in as_list(s["Principal"]["AWS"])]
        decrypts = [s for s in mine if grants(s, "kms:Decrypt")]
        assert len(decrypts) == 1
        assert decrypts[0]["Condition"]["StringEquals"] == {
            "kms:EncryptionContext:ccc:tenant": tenant,
            "kms:EncryptionContext:ccc:kind": "result",
        }


# --- least privilege -------------------------------------------------------------------------------


_S3_VIA_SERVICE = {"Fn::Join": ["", ["s3.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]}


def _storage_key_arn(synth: Any) -> dict[str, Any]:
    return {"Fn::GetAtt": [synth.logical_id(synth.stack.keys.storage_key), "Arn"]}


def _storage_key_grants(synth: Any, statements: list[dict[str, Any]]) -> dict[str, set[str]]:
    """KMS action -> logical ids of the buckets it is scoped to. Fails on any KMS statement that is
    not: the storage key, via S3 only, scoped to named buckets by the S3 encryption context."""
    grants_by_action: dict[str, set[str]] = {}
    for statement in kms_statements(statements):
        assert "NotAction" not in statement and "NotResource" not in statement, statement
        assert as_list(statement["Resource"]) == [_storage_key_arn(synth)], statement
        conditions = statement["Condition"]
        via = conditions["StringEquals"]["kms:ViaService"]
        assert via == _S3_VIA_SERVICE, statement
        scopes = as_list(conditions["StringLike"]["kms:EncryptionContext:aws:s3:arn"])
        buckets = set()
        for scope in scopes:
            text = json.dumps(scope)
            (bucket,) = {
                b for b in synth.resources if f'"{b}"' in text and synth.resources[b]["Type"] == "AWS::S3::Bucket"
            }
            buckets.add(bucket)
        for action in as_list(statement["Action"]):
            assert action in ("kms:Decrypt", "kms:GenerateDataKey"), action
            grants_by_action.setdefault(action, set()).update(buckets)
    return grants_by_action


def _bucket_ids(synth: Any, *names: str) -> set[str]:
    return {synth.logical_id(getattr(synth.stack.storage, n)) for n in names}


def _expected_tenant_key_statements(synth: Any) -> list[dict[str, Any]]:
    """Cross-account use needs the caller's IAM policy too: exactly the tenants' key ARNs, exactly
    the enclave's two actions (the tenant's key policy adds the attestation conditions)."""
    arns = sorted(t.key_arn for t in synth.stack.inputs.tenants)
    if not arns:
        return []
    return [
        {
            "Sid": "TenantOwnedDataKeys",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": arns if len(arns) > 1 else arns[0],
        }
    ]


def test_parent_role_has_no_iam_right_on_the_data_key_and_storage_key_only_via_s3(synth: Any) -> None:
    """The data key's attested key-policy statement is the ONLY way the parent role reaches key
    material: its IAM policies name no KMS action on the data key (nor on `*`), and the data key
    policy gives the account root no data action, so no IAM policy could add one. Its only KMS
    rights are storage-key Decrypt, conditioned on kms:ViaService = s3.<region>.amazonaws.com and
    scoped to the SSE-KMS buckets it reads (inbox: job ciphertext; artifacts: the release)."""
    role_id = synth.logical_id(synth.stack.identities.parent_role)
    statements = role_statements(synth.resources, role_id)
    assert statements
    assert managed_policy_arns(synth.resources, role_id) == []
    tenant_keys = [s for s in statements if s.get("Sid") == "TenantOwnedDataKeys"]
    statements = [s for s in statements if s not in tenant_keys]
    assert tenant_keys == _expected_tenant_key_statements(synth)
    operator_key = synth.stack.keys.data_key
    data_key = synth.logical_id(operator_key) if operator_key is not None else "<no operator key>"
    for statement in kms_statements(statements):
        assert data_key not in json.dumps(statement["Resource"]), statement
        assert as_list(statement["Resource"]) == [_storage_key_arn(synth)], statement
        assert statement["Condition"]["StringEquals"]["kms:ViaService"] == _S3_VIA_SERVICE, statement
    assert _storage_key_grants(synth, statements) == {"kms:Decrypt": _bucket_ids(synth, "inbox", "artifacts")}
    for statement in statements:
        assert "*" not in as_list(statement["Action"]) and "kms:*" not in as_list(statement["Action"])
    root = {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::", {"Ref": "AWS::AccountId"}, ":root"]]}
    if synth.stack.keys.data_key is None:
        return
    for statement in as_list(_data_key(synth)["KeyPolicy"]["Statement"]):
        if root in as_list(statement["Principal"]["AWS"]):
            for action in ("kms:Decrypt", "kms:GenerateDataKey", "kms:ReEncryptFrom", "kms:CreateGrant"):
                assert not grants(statement, action), f"the root (hence IAM) could grant {action}"


def test_parent_role_can_only_do_its_job(synth: Any) -> None:
    role_id = synth.logical_id(synth.stack.identities.parent_role)
    statements = role_statements(synth.resources, role_id)
    actions = {str(a) for s in statements for a in as_list(s["Action"])}
    for forbidden in (
        "s3:DeleteObject",
        "s3:PutObjectAcl",
        "sqs:SendMessage",
        "autoscaling:SetDesiredCapacity",
        "iam:PassRole",
        "dynamodb:PutItem",
        "dynamodb:DeleteItem",
        "dynamodb:Scan",
        "dynamodb:Query",
        "dynamodb:BatchWriteItem",
    ):
        assert not any(grants(s, forbidden) for s in statements), forbidden
    for needed in (
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "s3:GetObject",
        "s3:PutObject",
        "autoscaling:CompleteLifecycleAction",
        "cloudwatch:PutMetricData",
        "dynamodb:UpdateItem",
        "dynamodb:GetItem",
    ):
        assert needed in actions, needed
    (metrics,) = [s for s in statements if grants(s, "cloudwatch:PutMetricData")]
    assert metrics["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": synth.stack.config.names.metrics_namespace}
    }


def test_parent_role_reaches_only_the_jobs_table_items_its_leases_use(synth: Any) -> None:
    """Exactly one DynamoDB statement: the lease adapter's actions (ccc_common.aws.job_leases: a conditional
    UpdateItem claims and releases, GetItem reads a refusing lease) on exactly the jobs table, not its index."""
    role_id = synth.logical_id(synth.stack.identities.parent_role)
    statements = role_statements(synth.resources, role_id)

    def touches_dynamodb(statement: dict[str, Any]) -> bool:
        actions = [str(a).lower() for a in as_list(statement.get("Action", []))]
        return "NotAction" in statement or any(a == "*" or a.startswith("dynamodb:") for a in actions)

    dynamo = [s for s in statements if s.get("Effect") == "Allow" and touches_dynamodb(s)]
    (statement,) = dynamo
    assert sorted(as_list(statement["Action"])) == ["dynamodb:GetItem", "dynamodb:UpdateItem"]
    table_id = synth.logical_id(synth.stack.orchestration.table)
    assert as_list(statement["Resource"]) == [{"Fn::GetAtt": [table_id, "Arn"]}]
    assert "Condition" not in statement


# AWS-managed policies a Lambda role may carry (CDK's custom-resource providers): logs only, no KMS.
_ALLOWED_LAMBDA_MANAGED_POLICIES = (
    {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"},
)


def test_no_lambda_role_holds_kms_decrypt_reencrypt_or_wildcards_anywhere(synth: Any) -> None:
    """Issue 6: "Lambdas have no KMS decrypt at all". Every Lambda in the template (ours and CDK's
    custom-resource providers), every policy attached to its role (inline, AWS::IAM::Policy,
    customer-managed), on any key: no kms:Decrypt, kms:ReEncrypt*, kms:CreateGrant, kms:* or *.
    And no key policy (resource side) names a Lambda role."""
    roles = lambda_role_ids(synth.resources)
    ours = {synth.logical_id(f) for f in synth.stack.orchestration.functions.values()}
    assert ours <= set(roles)  # plus, in dev, CDK's auto-delete-objects provider
    for function_id, role_id in roles.items():
        statements = role_statements(synth.resources, role_id)
        assert statements or function_id not in ours
        for statement in statements:
            assert not forbidden_lambda_kms(statement), (function_id, forbidden_lambda_kms(statement), statement)
        for arn in managed_policy_arns(synth.resources, role_id):
            assert arn in _ALLOWED_LAMBDA_MANAGED_POLICIES, (function_id, arn)
    role_refs = [{"Fn::GetAtt": [role_id, "Arn"]} for role_id in roles.values()]
    for key_id, key in synth.of_type("AWS::KMS::Key").items():
        text = json.dumps(key["Properties"]["KeyPolicy"])
        assert not [r for r in role_refs if json.dumps(r) in text], key_id


def test_forbidden_lambda_kms_check_catches_every_dangerous_shape() -> None:
    """The check above must fail on what it is meant to catch (and accept the grants we make)."""
    bad = (
        {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"},
        {"Effect": "Allow", "Action": ["kms:GenerateDataKey", "kms:decrypt"], "Resource": "*"},
        {"Effect": "Allow", "Action": "kms:*", "Resource": "*"},
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Allow", "Action": "kms:ReEncrypt*", "Resource": "*"},
        {"Effect": "Allow", "Action": "kms:ReEncryptFrom", "Resource": "*"},
        {"Effect": "Allow", "Action": "kms:Decr*", "Resource": "*"},
        {"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"},
    )
    for statement in bad:
        assert forbidden_lambda_kms(statement), statement
    good = (
        {"Effect": "Allow", "Action": "kms:GenerateDataKey", "Resource": "k"},
        {"Effect": "Allow", "Action": ["s3:GetObject", "logs:PutLogEvents"], "Resource": "*"},
        {"Effect": "Deny", "Action": "kms:*", "Resource": "*"},
    )
    for statement in good:
        assert not forbidden_lambda_kms(statement), statement


def test_no_lambda_can_use_the_data_key_and_storage_key_use_is_minimal(synth: Any) -> None:
    """No Lambda can ever obtain plaintext: no right on the data key; storage-key (SSE-KMS) rights
    only GenerateDataKey, only via S3 and only for the SSE-KMS bucket a function writes to (see
    cdk/orchestration.py). Reading results needs none: that bucket is SSE-S3."""
    expected = {
        "scaler": {},
        "job_events": {},
        "jobs_api": {"kms:GenerateDataKey": _bucket_ids(synth, "inbox")},
        "dead_letters": {"kms:GenerateDataKey": _bucket_ids(synth, "artifacts")},
    }
    operator_key = synth.stack.keys.data_key
    data_key = synth.logical_id(operator_key) if operator_key is not None else "<no operator key>"
    tenant_keys = [t.key_arn for t in synth.stack.inputs.tenants]
    for name, function in synth.stack.orchestration.functions.items():
        resource = synth.resources[synth.logical_id(function)]
        role_id = function_role_id(resource)
        statements = role_statements(synth.resources, role_id)
        assert managed_policy_arns(synth.resources, role_id) == [], name
        assert data_key not in json.dumps(statements), f"{name} refers to the data key"
        assert not any(arn in json.dumps(statements) for arn in tenant_keys), f"{name} refers to a tenant key"
        for action in ("kms:ReEncryptFrom", "kms:CreateGrant", "kms:Encrypt", "kms:GenerateDataKeyPair"):
            assert not any(grants(s, action) for s in statements), f"{name} can {action}"
        assert _storage_key_grants(synth, statements) == expected[name], name
    # No Lambda may read the inbox (client ciphertext), not even through S3.
    for function in synth.stack.orchestration.functions.values():
        statements = role_statements(synth.resources, function_role_id(synth.resources[synth.logical_id(function)]))
        inbox = synth.logical_id(synth.stack.storage.inbox)
        assert not [s for s in statements if grants(s, "s3:GetObject") and inbox in json.dumps(s["Resource"])]


def test_tenant_roles_reach_only_their_own_prefixes(synth: Any) -> None:
    for tenant, role in synth.stack.identities.tenant_roles.items():
        statements = role_statements(synth.resources, synth.logical_id(role))
        # Uploads into the SSE-KMS inbox; results (SSE-S3) are read without any KMS right.
        assert _storage_key_grants(synth, statements) == {"kms:GenerateDataKey": _bucket_ids(synth, "inbox")}
        objects = [
            json.dumps(s["Resource"]) for s in statements if grants(s, "s3:PutObject") or grants(s, "s3:GetObject")
        ]
        assert objects and all(f"/{tenant}/*" in o for o in objects), objects


def test_custom_resource_lambdas_have_no_kms_rights(synth: Any) -> None:
    ours = {synth.logical_id(f) for f in synth.stack.orchestration.functions.values()}
    for logical_id, function in synth.of_type("AWS::Lambda::Function").items():
        if logical_id in ours:
            continue
        role_id = function_role_id(function)
        assert kms_statements(role_statements(synth.resources, role_id)) == [], logical_id


# --- queues and events -----------------------------------------------------------------------------


def test_work_queue_redrives_to_the_dlq_after_the_configured_receives(synth: Any) -> None:
    settings = stage_settings(synth.stage).queue
    queue = synth.resources[synth.logical_id(synth.stack.work_queue.queue)]["Properties"]
    dlq_id = synth.logical_id(synth.stack.work_queue.dead_letter_queue)
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
        "maxReceiveCount": settings.max_receive_count,
    }
    assert queue["VisibilityTimeout"] == settings.visibility_timeout_s
    assert queue["VisibilityTimeout"] > stage_settings(synth.stage).limits.job_timeout_s
    assert queue["QueueName"] == synth.stack.config.names.work_queue
    dlq = synth.resources[dlq_id]["Properties"]
    assert dlq["QueueName"] == synth.stack.config.names.dead_letter_queue
    for props in (queue, dlq):
        assert props["SqsManagedSseEnabled"] is True


def test_queues_refuse_plain_http(synth: Any) -> None:
    policies = synth.of_type("AWS::SQS::QueuePolicy").values()
    for queue in (synth.stack.work_queue.queue, synth.stack.work_queue.dead_letter_queue):
        ref = {"Ref": synth.logical_id(queue)}
        denies = [
            s
            for p in policies
            if ref in p["Properties"]["Queues"]
            for s in as_list(p["Properties"]["PolicyDocument"]["Statement"])
            if s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
        ]
        assert denies


def _rule_for(synth: Any, rule: Any) -> dict[str, Any]:
    return synth.resources[synth.logical_id(rule)]["Properties"]


def test_inbox_uploads_reach_the_work_queue_as_s3_eventbridge_events(synth: Any) -> None:
    wq = synth.stack.work_queue
    rule = _rule_for(synth, wq.inbox_rule)
    pattern = rule["EventPattern"]
    assert pattern["source"] == ["aws.s3"] and pattern["detail-type"] == ["Object Created"]
    assert pattern["detail"]["bucket"]["name"] == [{"Ref": synth.logical_id(synth.stack.storage.inbox)}]
    assert pattern["detail"]["object"]["key"] == [{"wildcard": "jobs/*.ccc"}]
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [synth.logical_id(wq.queue), "Arn"]}
    assert "InputTransformer" not in target and "Input" not in target, "the event goes to the queue as is"
    assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": [synth.logical_id(wq.dead_letter_queue), "Arn"]}


def test_inbox_and_results_events_reach_job_events(synth: Any) -> None:
    wq = synth.stack.work_queue
    job_events = {"Fn::GetAtt": [synth.logical_id(synth.stack.orchestration.functions["job_events"]), "Arn"]}
    for rule, bucket, prefix in (
        (wq.inbox_events_rule, synth.stack.storage.inbox, "jobs/"),
        (wq.results_events_rule, synth.stack.storage.results, "results/"),
    ):
        props = _rule_for(synth, rule)
        assert props["EventPattern"]["detail"]["bucket"]["name"] == [{"Ref": synth.logical_id(bucket)}]
        assert props["EventPattern"]["detail"]["object"]["key"] == [{"prefix": prefix}]
        assert [t["Arn"] for t in props["Targets"]] == [job_events]


def test_scaler_runs_on_a_schedule(synth: Any) -> None:
    scaler = {"Fn::GetAtt": [synth.logical_id(synth.stack.orchestration.functions["scaler"]), "Arn"]}
    rate = stage_settings(synth.stage).fleet.scaler_rate_minutes
    scheduled = [
        r["Properties"] for r in synth.of_type("AWS::Events::Rule").values() if "ScheduleExpression" in r["Properties"]
    ]
    assert [(r["ScheduleExpression"], [t["Arn"] for t in r["Targets"]]) for r in scheduled] == [
        (f"rate({rate} minute{'s' if rate > 1 else ''})", [scaler])
    ]


# --- buckets ---------------------------------------------------------------------------------------


def _buckets(synth: Any) -> dict[str, Any]:
    storage = synth.stack.storage
    return {name: getattr(storage, name) for name in ("inbox", "results", "artifacts", "access_logs")}


def test_buckets_block_public_access_and_are_versioned(synth: Any) -> None:
    for name, bucket in _buckets(synth).items():
        props = synth.resources[synth.logical_id(bucket)]["Properties"]
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }, name
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}, name


# Why the results bucket is SSE-S3 and not SSE-KMS: everything in it is already protected by the
# data key (ESDK result messages that only the tenant can decrypt, attestation documents that are
# public by nature, metadata-only failure records). A bucket-level KMS key would add no
# confidentiality, but S3 authorises SSE-KMS reads as the caller, so every reader (jobs_api
# signing presigned downloads, job_events reading failure records) would need kms:Decrypt, which no
# Lambda may hold (issue 6). See cdk/storage.py and docs/deploy.md.
_ENCRYPTION = {"inbox": "aws:kms", "artifacts": "aws:kms", "results": "AES256", "access_logs": "AES256"}


def _default_encryption(synth: Any, bucket: Any) -> dict[str, Any]:
    props = synth.resources[synth.logical_id(bucket)]["Properties"]
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    return dict(rule["ServerSideEncryptionByDefault"])


def test_inbox_and_artifacts_use_sse_kms_with_the_storage_key(synth: Any) -> None:
    for name in ("inbox", "artifacts"):
        bucket = getattr(synth.stack.storage, name)
        assert _default_encryption(synth, bucket) == {
            "SSEAlgorithm": "aws:kms",
            "KMSMasterKeyID": _storage_key_arn(synth),
        }, name
        (rule,) = synth.resources[synth.logical_id(bucket)]["Properties"]["BucketEncryption"][
            "ServerSideEncryptionConfiguration"
        ]
        assert rule["BucketKeyEnabled"] is True, name


def test_results_bucket_uses_sse_s3_so_no_reader_needs_kms(synth: Any) -> None:
    """See the comment above _ENCRYPTION for why; the Lambda tests above check the payoff."""
    assert _default_encryption(synth, synth.stack.storage.results) == {"SSEAlgorithm": "AES256"}
    (rule,) = synth.resources[synth.logical_id(synth.stack.storage.results)]["Properties"]["BucketEncryption"][
        "ServerSideEncryptionConfiguration"
    ]
    assert "KMSMasterKeyID" not in rule["ServerSideEncryptionByDefault"]


def test_every_bucket_has_the_intended_encryption_and_data_buckets_log_access(synth: Any) -> None:
    logs_ref = {"Ref": synth.logical_id(synth.stack.storage.access_logs)}
    for name, bucket in _buckets(synth).items():
        assert _default_encryption(synth, bucket)["SSEAlgorithm"] == _ENCRYPTION[name], name
        if name != "access_logs":  # S3 access logging cannot write SSE-KMS; the log bucket logs nowhere
            props = synth.resources[synth.logical_id(bucket)]["Properties"]
            assert props["LoggingConfiguration"]["DestinationBucketName"] == logs_ref, name


def test_buckets_refuse_plain_http(synth: Any) -> None:
    policies = synth.of_type("AWS::S3::BucketPolicy").values()
    for name, bucket in _buckets(synth).items():
        ref = {"Ref": synth.logical_id(bucket)}
        statements = [
            s
            for p in policies
            if p["Properties"]["Bucket"] == ref
            for s in as_list(p["Properties"]["PolicyDocument"]["Statement"])
        ]
        assert any(
            s["Effect"] == "Deny"
            and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
            and s["Principal"] == {"AWS": "*"}
            and s["Action"] == "s3:*"
            for s in statements
        ), name


def test_bucket_lifecycles_follow_the_stage(synth: Any) -> None:
    config = stage_config(synth.stage)
    expected = {
        "inbox": config.inbox_expiry_days,
        "results": config.results_expiry_days,
        "artifacts": None,
        "access_logs": config.access_log_expiry_days,
    }
    for name, bucket in _buckets(synth).items():
        rules = synth.resources[synth.logical_id(bucket)]["Properties"]["LifecycleConfiguration"]["Rules"]
        whole_bucket = [r for r in rules if "Prefix" not in r]
        assert len(whole_bucket) == 1, name
        assert whole_bucket[0].get("ExpirationInDays") == expected[name], name
        assert all(r["NoncurrentVersionExpiration"]["NoncurrentDays"] == config.noncurrent_expiry_days for r in rules)
        if name == "artifacts":
            (archive,) = [r for r in rules if "Prefix" in r]
            assert archive["Prefix"] == contract.DEAD_LETTER_ARCHIVE_PREFIX
            assert archive["ExpirationInDays"] == stage_settings(synth.stage).job_ttl_days
    # A job can be redriven from the DLQ as long as the DLQ keeps it: its input must still exist.
    assert config.inbox_expiry_days * 86400 > stage_settings(synth.stage).queue.dlq_retention_s


def test_inbox_and_results_emit_eventbridge_events(synth: Any) -> None:
    for name in ("inbox", "results"):
        props = synth.resources[synth.logical_id(getattr(synth.stack.storage, name))]["Properties"]
        assert props["NotificationConfiguration"] == {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}


def test_bucket_names_come_from_naming_with_account_and_region(synth: Any) -> None:
    props = synth.resources[synth.logical_id(synth.stack.storage.inbox)]["Properties"]
    assert props["BucketName"] == {
        "Fn::Join": ["", [f"{PROJECT}-{synth.stage}-inbox-", {"Ref": "AWS::AccountId"}, "-", {"Ref": "AWS::Region"}]]
    }


# --- API, functions, table -------------------------------------------------------------------------


def test_every_api_method_requires_iam_auth(synth: Any) -> None:
    methods = synth.of_type("AWS::ApiGateway::Method").values()
    routes = set()
    for method in methods:
        props = method["Properties"]
        assert props["AuthorizationType"] == "AWS_IAM"
        routes.add(props["HttpMethod"])
    assert len(methods) == 3 and routes == {"GET", "POST"}


def test_lambdas_are_arm64_python_with_both_layers_and_their_environment(synth: Any) -> None:
    names = synth.stack.config.names
    shared_layer = [k for k in synth.of_type("AWS::Lambda::LayerVersion")]
    assert len(shared_layer) == 1
    for name, function in synth.stack.orchestration.functions.items():
        props = synth.resources[synth.logical_id(function)]["Properties"]
        assert props["Architectures"] == ["arm64"]
        assert props["Runtime"] == "python3.13"
        assert props["Handler"] == f"functions.{name}.handler.handler"
        assert props["FunctionName"] == names.function_name(name)
        assert props["TracingConfig"] == {"Mode": "Active"}
        layers = json.dumps(props["Layers"])
        assert "AWSLambdaPowertoolsPythonV3-python313-arm64" in layers and shared_layer[0] in layers
        env = props["Environment"]["Variables"]
        assert env[contract.STAGE] == synth.stage
        assert env[contract.POWERTOOLS_SERVICE_NAME] == name
        assert env[contract.POWERTOOLS_METRICS_NAMESPACE] == names.metrics_namespace


def test_each_lambda_gets_exactly_the_variables_its_handler_model_reads(synth: Any) -> None:
    """One source of names (ccc_common.contracts.lambda_env): every required variable is set, and nothing is set that
    the function's model does not read (besides Powertools' own log level)."""
    from ccc_common.contracts import lambda_env as function_env

    for name, function in synth.stack.orchestration.functions.items():
        env = set(synth.resources[synth.logical_id(function)]["Properties"]["Environment"]["Variables"])
        reads = function_env.variables(function_env.FUNCTION_MODELS[name])
        assert {v for v, required in reads.items() if required} <= env, name
        assert env - set(reads) == {contract.POWERTOOLS_LOG_LEVEL}, name
    # The stack leaves these at the handlers' defaults on purpose (web origins: none unless deployed with
    # `-c web_origins=...`, see docs/web.md); everything else it fills.
    expected_unset = {function_env.IDLE_TIMEOUT_S, function_env.URL_EXPIRY_S, function_env.WEB_ORIGINS}
    for name, function in synth.stack.orchestration.functions.items():
        env = set(synth.resources[synth.logical_id(function)]["Properties"]["Environment"]["Variables"])
        unset = set(function_env.variables(function_env.FUNCTION_MODELS[name])) - env
        assert unset <= expected_unset, (name, unset)


def test_function_models_are_the_ones_the_handlers_load(synth: Any) -> None:
    """FUNCTION_MODELS drives the stack; it must name the model each handler validates with."""
    from ccc_common.contracts import lambda_env as function_env

    assert set(function_env.FUNCTION_MODELS) == set(synth.stack.orchestration.functions)
    for name, model in function_env.FUNCTION_MODELS.items():
        source = (REPO_ROOT / "functions" / name / "handler.py").read_text()
        assert f"load_env({model.__name__})" in source, name


def test_lambda_environment_refuses_a_missing_required_variable() -> None:
    with pytest.raises(ValueError, match="CCC_TENANT_PRINCIPALS"):
        contract.lambda_environment(
            "jobs_api",
            {contract.STAGE: "dev", contract.JOBS_TABLE: "t", contract.INBOX_BUCKET: "i", contract.RESULTS_BUCKET: "r"},
        )
    env = contract.lambda_environment(
        "scaler",
        {contract.STAGE: "dev", contract.WORK_QUEUE_URL: "u", contract.FLEET_GROUP: "g", contract.JOBS_TABLE: "t"},
    )
    assert env == {contract.STAGE: "dev", contract.WORK_QUEUE_URL: "u", contract.FLEET_GROUP: "g"}


def test_shared_layer_asset_has_the_lambda_layout(synth: Any) -> None:
    (layer,) = synth.of_type("AWS::Lambda::LayerVersion").values()
    asset_hash = layer["Properties"]["Content"]["S3Key"].removesuffix(".zip")
    root = synth.outdir / f"asset.{asset_hash}"
    assert (root / "python" / "ccc_common" / "domain" / "naming.py").is_file()
    assert (root / "python" / "ccc_common" / "domain" / "key_policy.py").is_file()
    assert (root / "python" / "ccc_core" / "identity.py").is_file()
    assert not list(root.rglob("__pycache__"))


def test_the_shared_layer_and_the_functions_import_in_a_python_holding_only_the_layer(synth: Any, tmp_path) -> None:
    """What Lambda sees: the functions asset + our layer + pydantic (Powertools layer) and nothing else
    of this repository. Every handler module must import there (botocore/boto3 come with the runtime)."""
    import subprocess
    import sys

    (layer,) = synth.of_type("AWS::Lambda::LayerVersion").values()
    layer_root = synth.outdir / f"asset.{layer['Properties']['Content']['S3Key'].removesuffix('.zip')}" / "python"
    assert not (layer_root / "ccc_enclave").exists(), "enclave-only code must not ship in the Lambda layer"
    ours = [
        f["Properties"]
        for f in synth.of_type("AWS::Lambda::Function").values()
        if f["Properties"].get("Handler", "").startswith("functions.")
    ]
    (functions_key,) = {f["Code"]["S3Key"] for f in ours}
    functions_root = synth.outdir / f"asset.{functions_key.removesuffix('.zip')}"
    handlers = sorted(f["Handler"].rsplit(".", 1)[0] for f in ours)
    assert len(handlers) == 4
    script = "import sys; sys.path[:0] = sys.argv[1:3]\n" + "".join(f"import {h}\n" for h in handlers)
    # -S: no site-packages of ours (the editable installs); stdlib + the venv's third-party via PYTHONPATH.
    site = [p for p in sys.path if p.endswith("site-packages")]
    env = {"PYTHONPATH": ":".join(site), "PATH": "/usr/bin:/bin", "POWERTOOLS_SERVICE_NAME": "t"}
    run = subprocess.run(
        [sys.executable, "-S", "-c", script, str(functions_root), str(layer_root)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-2000:]


def test_jobs_table_is_recoverable_encrypted_and_expires_items(synth: Any) -> None:
    props = synth.resources[synth.logical_id(synth.stack.orchestration.table)]["Properties"]
    assert props["TableName"] == synth.stack.config.names.jobs_table
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert props["TimeToLiveSpecification"] == {"AttributeName": contract.TABLE_TTL_ATTRIBUTE, "Enabled": True}
    (index,) = props["GlobalSecondaryIndexes"]
    assert index["IndexName"] == contract.TENANT_INDEX_NAME


def test_jobs_table_schema_is_the_one_the_job_store_queries(synth: Any) -> None:
    """The deployed key, tenant index and attribute types equal ccc_common.contracts.jobs_table's definition."""
    props = synth.resources[synth.logical_id(synth.stack.orchestration.table)]["Properties"]
    expected = jobs_table.create_table_request(props["TableName"])
    assert props["KeySchema"] == expected["KeySchema"]
    assert sorted(props["AttributeDefinitions"], key=lambda a: a["AttributeName"]) == sorted(
        expected["AttributeDefinitions"], key=lambda a: a["AttributeName"]
    )
    (deployed,) = props["GlobalSecondaryIndexes"]
    (wanted,) = expected["GlobalSecondaryIndexes"]
    assert {k: deployed[k] for k in ("IndexName", "KeySchema", "Projection")} == wanted


# --- stage differences -----------------------------------------------------------------------------


@pytest.mark.parametrize("cfn_type", ["AWS::S3::Bucket", "AWS::KMS::Key", "AWS::DynamoDB::Table", "AWS::SQS::Queue"])
def test_prod_retains_data_and_dev_cleans_up(synth: Any, cfn_type: str) -> None:
    expected = "Retain" if synth.stage == "prod" else "Delete"
    resources = synth.of_type(cfn_type).values()
    assert resources
    assert all(r.get("DeletionPolicy") == expected for r in resources)


def test_alarms_notify_an_encrypted_topic_only_in_prod(synth: Any) -> None:
    topics = synth.of_type("AWS::SNS::Topic")
    alarms = synth.of_type("AWS::CloudWatch::Alarm").values()
    assert len(alarms) == 4  # dead letters, attestation failures, oldest message, key changes
    if synth.stage == "prod":
        ((topic_id, topic),) = topics.items()
        assert topic["Properties"]["KmsMasterKeyId"] == _storage_key_arn(synth)
        assert all(a["Properties"]["AlarmActions"] == [{"Ref": topic_id}] for a in alarms)
    else:
        assert not topics
        assert all("AlarmActions" not in a["Properties"] for a in alarms)


def test_every_taggable_resource_carries_the_stage_tag(synth: Any) -> None:
    for cfn_type in (
        "AWS::S3::Bucket",
        "AWS::KMS::Key",
        "AWS::SQS::Queue",
        "AWS::DynamoDB::Table",
        "AWS::Lambda::Function",
        "AWS::EC2::VPC",
    ):
        for logical_id, resource in synth.of_type(cfn_type).items():
            if logical_id.startswith("Custom"):
                continue  # CDK's singleton custom-resource providers are raw resources (no Tags aspect)
            tags = {t["Key"]: t["Value"] for t in resource["Properties"].get("Tags", [])}
            assert tags.get(TAG_STAGE) == synth.stage, logical_id


def test_outputs_tell_clients_where_to_submit_and_what_to_expect(synth: Any) -> None:
    outputs = synth.template["Outputs"]
    for key in (
        contract.OUTPUT_API_URL,
        contract.OUTPUT_INBOX_BUCKET,
        contract.OUTPUT_RESULTS_BUCKET,
        contract.OUTPUT_DATA_KEY_ARN,
        contract.OUTPUT_TENANT_ROLES,
        contract.OUTPUT_RELEASE_PREFIX,
        contract.OUTPUT_STAGE,
        contract.OUTPUT_ARTIFACTS_BUCKET,
    ):
        assert key in outputs, key
    assert outputs[contract.OUTPUT_STAGE]["Value"] == synth.stage
    pinned = {
        int(k[len(contract.OUTPUT_PCR_PREFIX) :]): v["Value"]
        for k, v in outputs.items()
        if k.startswith(contract.OUTPUT_PCR_PREFIX)
    }
    assert pinned == dict(synth.stack.inputs.measurements.pcrs)


def test_each_lambda_environment_satisfies_the_handlers_model(synth: Any) -> None:
    """The functions validate their environment at cold start (ccc_common.contracts.lambda_env): the variables this
    stack sets must pass, with deploy-time tokens replaced by values of the right shape."""
    from ccc_common.contracts import lambda_env as function_env

    models: dict[str, type[function_env.FunctionEnv]] = {
        "scaler": function_env.ScalerEnv,
        "job_events": function_env.JobEventsEnv,
        "jobs_api": function_env.JobsApiEnv,
        "dead_letters": function_env.DeadLettersEnv,
    }
    literal = {
        contract.WORK_QUEUE_URL: "https://sqs.eu-west-1.amazonaws.com/123456789012/ccc-dev-work",
        contract.DLQ_URL: "https://sqs.eu-west-1.amazonaws.com/123456789012/ccc-dev-work-dlq",
        contract.JOBS_TABLE: "ccc-dev-jobs",
        contract.INBOX_BUCKET: "ccc-dev-inbox-123456789012-eu-west-1",
        contract.RESULTS_BUCKET: "ccc-dev-results-123456789012-eu-west-1",
        contract.ARCHIVE_BUCKET: "ccc-dev-artifacts-123456789012-eu-west-1",
        contract.TENANT_PRINCIPALS: json.dumps(
            {
                t: ["arn:aws:iam::123456789012:role/x-" + t]
                for t in [*synth.stack.inputs.demo_tenants, *(c.name for c in synth.stack.inputs.tenants)]
            }
        ),
    }
    for name, function in synth.stack.orchestration.functions.items():
        variables = synth.resources[synth.logical_id(function)]["Properties"]["Environment"]["Variables"]
        environ = {k: (v if isinstance(v, str) else literal[k]) for k, v in variables.items()}
        loaded = function_env.load_env(models[name], environ)
        assert loaded.stage == synth.stage
        if isinstance(loaded, function_env.JobsTableEnv):
            assert loaded.jobs_tenant_index == contract.TENANT_INDEX_NAME
            assert loaded.jobs_ttl_attribute == contract.TABLE_TTL_ATTRIBUTE
