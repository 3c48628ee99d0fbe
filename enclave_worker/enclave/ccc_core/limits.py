"""Size and time limits every process enforces: the client, the parent agent and the enclave.

Why here: the enclave refuses frames, ciphertexts and images beyond these limits, so they are part
of the measured code; the client checks the same numbers before it uploads, so a tenant learns of
an oversized image on its own machine instead of from a failed job.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    max_image_bytes: int
    max_ciphertext_bytes: int
    max_frame_bytes: int
    max_image_pixels: int
    job_timeout_s: int


LIMITS = Limits(
    max_image_bytes=20 * 1024 * 1024,
    max_ciphertext_bytes=24 * 1024 * 1024,
    max_frame_bytes=32 * 1024 * 1024,
    max_image_pixels=40_000_000,
    job_timeout_s=120,
)
