"""The CCC client: encrypt images for the enclave, submit them, collect verified results.

Public API:
    local_target(state_dir) / cloudformation_target(stack_name) -> Target  (where; never what to trust)
    CccClient(target, tenant, trust=TrustFile).submit(check_image(path, limit)) -> SubmittedJob
    CccClient.wait(job_ref, timeout=...) / .fetch(job_ref) -> JobReport
    check_image / check_images, errors in ccc.client.errors
The CLI front end is `ccc submit` / `ccc result` (ccc.cli.client_cmd). See docs/local-stack.md.
"""

from __future__ import annotations

from ccc.client.errors import (
    ClientError,
    InputError,
    JobFailed,
    TargetError,
    UnknownJob,
    VerificationError,
    WaitTimeout,
)
from ccc.client.input_record import InputRecord
from ccc.client.inputs import ImageInput, check_image, check_images
from ccc.client.job_runner import CccClient, JobReport, SubmittedJob
from ccc.client.target import Target, cloudformation_target, local_target

__all__ = [
    "CccClient",
    "ClientError",
    "ImageInput",
    "InputError",
    "InputRecord",
    "JobFailed",
    "JobReport",
    "SubmittedJob",
    "Target",
    "TargetError",
    "UnknownJob",
    "VerificationError",
    "WaitTimeout",
    "check_image",
    "check_images",
    "cloudformation_target",
    "local_target",
]
