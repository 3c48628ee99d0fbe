"""Confidential Cat Counter: client, counting engine, attestation, and the embedded local stack."""

__version__ = "0.1.0"
