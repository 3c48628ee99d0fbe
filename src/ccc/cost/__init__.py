"""What CCC costs at rest and under load: idle cost priced from a synthesised template
(`ccc cost idle`) and a month simulated against the real scaler policy (`ccc cost simulate`).

Why in the `ccc` package: it reads CloudFormation JSON and drives `ccc_common.domain.scaling`;
it never imports the CDK app, so a template from any synthesis (or any deployed stack) can be priced.
"""
