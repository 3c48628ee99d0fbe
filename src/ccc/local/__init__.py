"""The embedded local stack: moto, the attested-KMS gateway, local identities, simulated enclaves."""
