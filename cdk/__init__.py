"""The CCC infrastructure as AWS CDK (Python) constructs; `app.py` builds one stage's stack.

Constructs, one per concern, composed by `cdk.ccc_stack.CccStack`: `Identities` (parent and tenant
roles), `Keys` (attested data key + storage key), `Storage`, `WorkQueue` (queue, DLQ, EventBridge
rules), `Orchestration` (Lambdas, layer, table, schedule, jobs API), `Fleet` (VPC, endpoints,
launch template, Auto Scaling group) and `Observability`.
"""

import os

# jsii (Node 20) prints an end-of-life banner on every import of aws_cdk unless told not to.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
