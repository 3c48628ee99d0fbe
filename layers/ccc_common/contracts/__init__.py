"""Formats that cross a process boundary outside the enclave, each defined once and imported by
its writer and its reader (e.g. `lambda_env`: the environment CDK and the local stack give each
Lambda, validated by the Lambda at cold start; `failure_record`: what the parent agent writes when
a job fails for good; `stack_outputs`: the CloudFormation outputs the client reads; `work_message`:
the S3 events the parent agent and the Lambdas consume). Formats the enclave writes live in
`ccc_core` instead (`ccc_core.result_document`), since the enclave imports nothing else."""
