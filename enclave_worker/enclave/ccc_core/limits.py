"""Size and time limits every process enforces: the client, the parent agent and the enclave.

Why here: the enclave refuses frames, ciphertexts and images beyond these limits, so they are part
of the measured code; the client checks the same numbers before it uploads, so a tenant learns of
an oversized image on its own machine instead of from a failed job. The result and attestation
limits bound what the enclave may send back and what the client will download, so the two can
never disagree about a genuine result.
"""

from __future__ import annotations

from dataclasses import dataclass

# Image formats the enclave decodes (Pillow format names). The client checks a file's header
# against the same list before it encrypts anything, so an unsupported file fails on the tenant's
# machine, not as a failed job. (Multi-picture JPEGs from phones open through the JPEG plugin.)
IMAGE_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF")


@dataclass(frozen=True)
class Limits:
    max_image_bytes: int
    max_ciphertext_bytes: int
    max_frame_bytes: int
    max_image_pixels: int
    job_timeout_s: int
    max_result_ciphertext_bytes: int
    max_attestation_bytes: int


LIMITS = Limits(
    max_image_bytes=20 * 1024 * 1024,
    max_ciphertext_bytes=24 * 1024 * 1024,
    max_frame_bytes=32 * 1024 * 1024,
    max_image_pixels=40_000_000,
    job_timeout_s=120,
    # A padded result document (ccc_core.result_document) is a few 16 KiB blocks; the ESDK adds ~1 KiB.
    max_result_ciphertext_bytes=1024 * 1024,
    # A genuine Nitro attestation document (COSE_Sign1, 4-certificate chain, optional fields) is 4.4-7.6 KiB.
    max_attestation_bytes=16 * 1024,
)
