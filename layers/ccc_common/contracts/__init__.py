"""Formats that cross a process boundary outside the enclave, each defined once and imported by
its writer and its reader (e.g. `lambda_env`: the environment CDK and the local stack give each
Lambda, validated by the Lambda at cold start)."""
