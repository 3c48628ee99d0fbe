"""Differentially private statistics a tenant computes from its own results (`ccc stats`).

Why here, on the tenant's machine: counts are the tenant's data. The service (enclave, host,
dashboards) keeps and publishes none: a host can replay a job into any aggregate the enclave keeps
and restart the enclave to reset any budget it holds (issue 12, docs/threat-model.md). A tenant
that wants to *publish* figures about its images (to a partner, on a dashboard) runs the Laplace
mechanism here, over its decrypted, verified results, with an epsilon ledger in a file it keeps.

Modules: `mechanism` (noise, clipping, the budget ledger port, the aggregator), `ledger` (the
persistent ledger file), `results` (reading `ccc submit --json` / `ccc result --json` lines).
"""
