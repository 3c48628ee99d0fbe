"""Pure domain and policies: resource names, settings, the job model and its transitions, the
scaling and drain policies, the key policy, S3 event parsing, the jobs API, job lifecycle and
dead-letter logic, and the CloudWatch metric contract. No AWS SDK, no I/O: adapters are injected."""
