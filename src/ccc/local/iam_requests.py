"""What an AWS request asks for, in IAM terms: its actions, resource ARNs and condition keys.

Why: the local IAM gateway (`ccc.local.iam_gateway`) must authorise each request as AWS would,
so it needs the same (action, resource) pairs AWS's authoriser derives from the request. This
module derives them for the protocols the local tier speaks:

* S3 REST, path-style (`/<bucket>/<key>`): object and bucket actions from the method and
  sub-resources (CopyObject also needs GetObject on the source; ListObjects carries `s3:prefix`).
* JSON protocols with `X-Amz-Target` (DynamoDB, SQS, EventBridge, ...): the operation and, for
  DynamoDB and SQS, the table / index / queue ARN from the body.
* query protocols (`Action=` in the form body or query: Auto Scaling, EC2, SQS query mode, ...):
  the operation; resource `*` unless modelled (Auto Scaling group names, SQS queue URLs).

What it cannot classify gets the action `<service>:Unclassified` on `*`: only a policy granting
everything (the local admin) allows it, so an unknown request shape fails closed for everyone else.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from ccc.local.iam_eval import Access

UNCLASSIFIED = "Unclassified"

# Object sub-resources -> (GET action, PUT action, DELETE action)
_OBJECT_SUBRESOURCES = {
    "tagging": ("s3:GetObjectTagging", "s3:PutObjectTagging", "s3:DeleteObjectTagging"),
    "acl": ("s3:GetObjectAcl", "s3:PutObjectAcl", None),
    "retention": ("s3:GetObjectRetention", "s3:PutObjectRetention", None),
    "legal-hold": ("s3:GetObjectLegalHold", "s3:PutObjectLegalHold", None),
    "attributes": ("s3:GetObjectAttributes", None, None),
}
# Bucket sub-resources -> (GET action, PUT action, DELETE action)
_BUCKET_SUBRESOURCES = {
    "acl": ("s3:GetBucketAcl", "s3:PutBucketAcl", None),
    "policy": ("s3:GetBucketPolicy", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy"),
    "publicAccessBlock": (
        "s3:GetBucketPublicAccessBlock",
        "s3:PutBucketPublicAccessBlock",
        "s3:PutBucketPublicAccessBlock",
    ),
    "encryption": ("s3:GetEncryptionConfiguration", "s3:PutEncryptionConfiguration", "s3:PutEncryptionConfiguration"),
    "lifecycle": ("s3:GetLifecycleConfiguration", "s3:PutLifecycleConfiguration", "s3:PutLifecycleConfiguration"),
    "notification": ("s3:GetBucketNotification", "s3:PutBucketNotification", None),
    "versioning": ("s3:GetBucketVersioning", "s3:PutBucketVersioning", None),
    "cors": ("s3:GetBucketCORS", "s3:PutBucketCORS", "s3:PutBucketCORS"),
    "tagging": ("s3:GetBucketTagging", "s3:PutBucketTagging", "s3:PutBucketTagging"),
    "location": ("s3:GetBucketLocation", None, None),
    "logging": ("s3:GetBucketLogging", "s3:PutBucketLogging", None),
    "ownershipControls": ("s3:GetBucketOwnershipControls", "s3:PutBucketOwnershipControls", None),
    "object-lock": ("s3:GetBucketObjectLockConfiguration", "s3:PutBucketObjectLockConfiguration", None),
    "website": ("s3:GetBucketWebsite", "s3:PutBucketWebsite", "s3:DeleteBucketWebsite"),
    "replication": ("s3:GetReplicationConfiguration", "s3:PutReplicationConfiguration", None),
    "accelerate": ("s3:GetAccelerateConfiguration", "s3:PutAccelerateConfiguration", None),
    "requestPayment": ("s3:GetBucketRequestPayment", "s3:PutBucketRequestPayment", None),
}


@dataclass(frozen=True)
class ClassifiedRequest:
    """The IAM view of one request."""

    service: str
    operation: str
    needs: tuple[Access, ...]
    context: Mapping[str, Sequence[str]] = field(default_factory=dict)
    # S3 object reads: which bucket decides between 404 and 403 for a missing key.
    bucket_arn: str | None = None


@dataclass(frozen=True)
class RequestFacts:
    method: str
    path: str  # raw path, without the query
    query: Mapping[str, Sequence[str]]
    headers: Mapping[str, Sequence[str]]  # lower-case names
    body: bytes
    service: str
    region: str
    account: str
    partition: str = "aws"

    def header(self, name: str) -> str | None:
        values = self.headers.get(name)
        return values[0] if values else None


def split_target(raw_target: str) -> tuple[str, dict[str, list[str]]]:
    """(path, query) of a raw request target; blank query values are kept (`?uploads`, `?tagging`)."""
    parts = urlsplit(raw_target)
    return parts.path, parse_qs(parts.query, keep_blank_values=True)


def _unclassified(facts: RequestFacts, operation: str = UNCLASSIFIED) -> ClassifiedRequest:
    return ClassifiedRequest(facts.service, operation, (Access(f"{facts.service}:{UNCLASSIFIED}", "*"),))


# ----- S3 -----------------------------------------------------------------------------------


def _s3_arn(facts: RequestFacts, bucket: str, key: str | None = None) -> str:
    return f"arn:{facts.partition}:s3:::{bucket}" + (f"/{key}" if key is not None else "")


def _copy_source(facts: RequestFacts) -> Access | None:
    raw = facts.header("x-amz-copy-source")
    if raw is None:
        return None
    source = unquote(raw.split("?", 1)[0]).lstrip("/")
    bucket, _, key = source.partition("/")
    if not bucket or not key:
        return Access("s3:GetObject", "*")  # malformed: needs a grant on everything
    action = "s3:GetObjectVersion" if "versionId=" in raw else "s3:GetObject"
    return Access(action, _s3_arn(facts, bucket, key))


def classify_s3(facts: RequestFacts) -> ClassifiedRequest:
    method = facts.method.upper()
    segments = facts.path.lstrip("/").split("/", 1)
    bucket = unquote(segments[0]) if segments[0] else ""
    key = unquote(segments[1]) if len(segments) > 1 and segments[1] != "" else None
    q = facts.query
    if not bucket:
        if method == "GET":
            return ClassifiedRequest("s3", "ListBuckets", (Access("s3:ListAllMyBuckets", "*"),))
        return _unclassified(facts)
    bucket_arn = _s3_arn(facts, bucket)
    if key is None:
        return _classify_bucket(facts, method, bucket_arn)
    object_arn = _s3_arn(facts, bucket, key)
    for sub, actions in _OBJECT_SUBRESOURCES.items():
        if sub in q:
            index = {"GET": 0, "HEAD": 0, "PUT": 1, "DELETE": 2}.get(method)
            action = actions[index] if index is not None else None
            if action is None:
                return _unclassified(facts)
            return ClassifiedRequest("s3", action.split(":")[1], (Access(action, object_arn),))
    if method in ("GET", "HEAD"):
        if "uploadId" in q:
            return ClassifiedRequest("s3", "ListParts", (Access("s3:ListMultipartUploadParts", object_arn),))
        action = "s3:GetObjectVersion" if "versionId" in q else "s3:GetObject"
        return ClassifiedRequest(
            "s3", "GetObject" if method == "GET" else "HeadObject", (Access(action, object_arn),), bucket_arn=bucket_arn
        )
    if method == "PUT":
        needs = [Access("s3:PutObject", object_arn)]
        source = _copy_source(facts)
        if source is not None:
            needs.append(source)
        return ClassifiedRequest("s3", "CopyObject" if source else "PutObject", tuple(needs))
    if method == "POST":
        if "uploads" in q or "uploadId" in q:
            return ClassifiedRequest("s3", "MultipartUpload", (Access("s3:PutObject", object_arn),))
        return _unclassified(facts)
    if method == "DELETE":
        if "uploadId" in q:
            return ClassifiedRequest("s3", "AbortMultipartUpload", (Access("s3:AbortMultipartUpload", object_arn),))
        action = "s3:DeleteObjectVersion" if "versionId" in q else "s3:DeleteObject"
        return ClassifiedRequest("s3", "DeleteObject", (Access(action, object_arn),))
    return _unclassified(facts)


def _classify_bucket(facts: RequestFacts, method: str, bucket_arn: str) -> ClassifiedRequest:
    q = facts.query
    for sub, actions in _BUCKET_SUBRESOURCES.items():
        if sub in q:
            index = {"GET": 0, "HEAD": 0, "PUT": 1, "DELETE": 2}.get(method)
            action = actions[index] if index is not None else None
            if action is None:
                return _unclassified(facts)
            return ClassifiedRequest("s3", action.split(":")[1], (Access(action, bucket_arn),))
    if method == "POST" and "delete" in q:
        # DeleteObjects names its keys in the body; a grant on every key of the bucket is required.
        return ClassifiedRequest("s3", "DeleteObjects", (Access("s3:DeleteObject", f"{bucket_arn}/*"),))
    if method in ("GET", "HEAD"):
        if method == "HEAD":
            return ClassifiedRequest("s3", "HeadBucket", (Access("s3:ListBucket", bucket_arn),))
        if "versions" in q:
            action, operation = "s3:ListBucketVersions", "ListObjectVersions"
        elif "uploads" in q:
            action, operation = "s3:ListBucketMultipartUploads", "ListMultipartUploads"
        else:
            action, operation = "s3:ListBucket", "ListObjects"
        prefix = (q.get("prefix") or [""])[0]
        context: dict[str, list[str]] = {"s3:prefix": [prefix]}
        for name, context_key in (("delimiter", "s3:delimiter"), ("max-keys", "s3:max-keys")):
            if name in q:
                context[context_key] = [q[name][0]]
        return ClassifiedRequest("s3", operation, (Access(action, bucket_arn),), context)
    if method == "PUT":
        return ClassifiedRequest("s3", "CreateBucket", (Access("s3:CreateBucket", bucket_arn),))
    if method == "DELETE":
        return ClassifiedRequest("s3", "DeleteBucket", (Access("s3:DeleteBucket", bucket_arn),))
    return _unclassified(facts)


# ----- JSON and query protocols -----------------------------------------------------------------


def _json_body(facts: RequestFacts) -> dict[str, Any]:
    try:
        data = json.loads(facts.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _form(facts: RequestFacts) -> dict[str, str]:
    params = {k: v[0] for k, v in facts.query.items() if v}
    content_type = (facts.header("content-type") or "").lower()
    if facts.body and "application/x-www-form-urlencoded" in content_type:
        try:
            decoded = facts.body.decode()
        except UnicodeDecodeError:
            return params
        params.update({k: v[0] for k, v in parse_qs(decoded, keep_blank_values=True).items() if v})
    return params


def _queue_arn(facts: RequestFacts, queue_url: Any) -> str:
    if not isinstance(queue_url, str) or not queue_url:
        return "*"
    parts = urlsplit(queue_url).path.strip("/").split("/")
    if len(parts) != 2 or not parts[0].isdigit():
        return "*"
    return f"arn:{facts.partition}:sqs:{facts.region}:{parts[0]}:{parts[1]}"


def _sqs(facts: RequestFacts, operation: str, params: Mapping[str, Any]) -> ClassifiedRequest:
    action = f"sqs:{operation}"
    if operation.endswith("Batch"):
        action = f"sqs:{operation.removesuffix('Batch')}"
    if operation in ("CreateQueue", "GetQueueUrl"):
        name = params.get("QueueName")
        owner = params.get("QueueOwnerAWSAccountId") or facts.account
        resource = f"arn:{facts.partition}:sqs:{facts.region}:{owner}:{name}" if isinstance(name, str) else "*"
    elif operation == "ListQueues":
        resource = "*"
    else:
        resource = _queue_arn(facts, params.get("QueueUrl"))
    return ClassifiedRequest("sqs", operation, (Access(action, resource),))


def _table_arn(facts: RequestFacts, table: Any, index: Any = None) -> str:
    if not isinstance(table, str) or not table:
        return "*"
    if table.startswith("arn:"):
        return table
    arn = f"arn:{facts.partition}:dynamodb:{facts.region}:{facts.account}:table/{table}"
    return f"{arn}/index/{index}" if isinstance(index, str) and index else arn


def _dynamodb(facts: RequestFacts, operation: str, body: Mapping[str, Any]) -> ClassifiedRequest:
    action = f"dynamodb:{operation}"
    needs: list[Access] = []
    if operation in ("BatchGetItem", "BatchWriteItem"):
        items = body.get("RequestItems")
        if isinstance(items, Mapping):
            needs = [Access(action, _table_arn(facts, table)) for table in items]
    elif operation in ("TransactGetItems", "TransactWriteItems"):
        for item in body.get("TransactItems") or []:
            if isinstance(item, Mapping):
                for kind, request in item.items():
                    table = request.get("TableName") if isinstance(request, Mapping) else None
                    op = {
                        "Get": "GetItem",
                        "Put": "PutItem",
                        "Update": "UpdateItem",
                        "Delete": "DeleteItem",
                        "ConditionCheck": "ConditionCheckItem",
                    }.get(kind, UNCLASSIFIED)
                    needs.append(Access(f"dynamodb:{op}", _table_arn(facts, table)))
    elif operation in ("ListTables", "DescribeLimits", "DescribeEndpoints"):
        needs = [Access(action, "*")]
    else:
        needs = [
            Access(action, _table_arn(facts, body.get("TableName") or body.get("ResourceArn"), body.get("IndexName")))
        ]
    if not needs:
        needs = [Access(action, "*")]
    return ClassifiedRequest("dynamodb", operation, tuple(needs))


def _autoscaling_resource(facts: RequestFacts, params: Mapping[str, str]) -> str:
    name = params.get("AutoScalingGroupName")
    if not name:
        return "*"
    prefix = f"arn:{facts.partition}:autoscaling:{facts.region}:{facts.account}"
    return f"{prefix}:autoScalingGroup:*:autoScalingGroupName/{name}"


_TAG_MEMBER = re.compile(r"^Tags\.member\.(\d{1,4})\.(ResourceId|ResourceType|Key)$")


def _autoscaling_tags(facts: RequestFacts, operation: str, form: Mapping[str, str]) -> ClassifiedRequest:
    """CreateOrUpdateTags / DeleteTags: one group ARN per tagged group, `aws:TagKeys` = every key.

    The group comes from `Tags.member.N.ResourceId` (these calls carry no AutoScalingGroupName),
    so a policy scoped to one group and to some tag keys is evaluated as IAM does."""
    members: dict[str, dict[str, str]] = {}
    for name, value in form.items():
        match = _TAG_MEMBER.match(name)
        if match:
            members.setdefault(match.group(1), {})[match.group(2)] = value
    groups = sorted({m.get("ResourceId", "") for m in members.values()})
    if not members or "" in groups or any(m.get("ResourceType") != "auto-scaling-group" for m in members.values()):
        return _unclassified(facts)
    needs = tuple(
        Access(f"autoscaling:{operation}", _autoscaling_resource(facts, {"AutoScalingGroupName": group}))
        for group in groups
    )
    keys = sorted({m["Key"] for m in members.values() if "Key" in m})
    return ClassifiedRequest("autoscaling", operation, needs, {"aws:TagKeys": keys})


def classify_rpc(facts: RequestFacts) -> ClassifiedRequest:
    """JSON (X-Amz-Target) and query (Action=) protocol requests of any service but S3."""
    target = facts.header("x-amz-target")
    service = facts.service
    if target:
        operation = target.rsplit(".", 1)[-1]
        body = _json_body(facts)
        if service == "dynamodb":
            return _dynamodb(facts, operation, body)
        if service == "sqs":
            return _sqs(facts, operation, body)
        return ClassifiedRequest(service, operation, (Access(f"{service}:{operation}", "*"),))
    form = _form(facts)
    operation = form.get("Action", "")
    if not operation.isalnum():
        return _unclassified(facts)
    if service == "sqs":
        queue_url = form.get("QueueUrl") or (f"http://x{facts.path}" if facts.path.count("/") == 2 else None)
        return _sqs(facts, operation, {**form, "QueueUrl": queue_url})
    if service == "autoscaling" and operation in ("CreateOrUpdateTags", "DeleteTags"):
        return _autoscaling_tags(facts, operation, form)
    if service == "autoscaling" and operation not in ("DescribeAutoScalingGroups",) and "AutoScalingGroupName" in form:
        return ClassifiedRequest(
            service, operation, (Access(f"{service}:{operation}", _autoscaling_resource(facts, form)),)
        )
    context: dict[str, list[str]] = {}
    if service == "monitoring":
        # CloudWatch's signing name is `monitoring`, its IAM prefix `cloudwatch`.
        if "Namespace" in form:
            context["cloudwatch:namespace"] = [form["Namespace"]]
        return ClassifiedRequest(service, operation, (Access(f"cloudwatch:{operation}", "*"),), context)
    return ClassifiedRequest(service, operation, (Access(f"{service}:{operation}", "*"),))


def classify(facts: RequestFacts) -> ClassifiedRequest:
    return classify_s3(facts) if facts.service == "s3" else classify_rpc(facts)


__all__ = [
    "UNCLASSIFIED",
    "ClassifiedRequest",
    "RequestFacts",
    "classify",
    "classify_rpc",
    "classify_s3",
    "split_target",
]
