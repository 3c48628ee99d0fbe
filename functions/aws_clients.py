"""The one botocore client policy every Lambda handler uses.

Why shared: the handlers run inside API Gateway's and EventBridge's time budgets, so their AWS
calls need the same short connect/read timeouts and bounded standard-mode retries; one
definition keeps the four handlers from drifting apart. (It lives here, not in ccc_common,
because the layer deliberately imports no boto3/botocore.)
"""

from __future__ import annotations

from botocore.config import Config

CLIENT_CONFIG = Config(connect_timeout=3, read_timeout=10, retries={"mode": "standard", "max_attempts": 3})
