"""Every message of the protocol, and the one registry that encodes and decodes them.

Why a module of its own: the message modules (job, health, errors) each declare their
types; this module is the single list of what may travel on the wire. Adding a message type means
adding it to `Message` here, and the registry then knows its tag.
"""

from __future__ import annotations

import typing
from typing import TypeAlias, cast

from ccc_enclave.protocol.codec import MessageRegistry
from ccc_enclave.protocol.error_replies import ErrorReply
from ccc_enclave.protocol.health_messages import HealthReply, HealthRequest
from ccc_enclave.protocol.job_messages import MAX_CIPHERTEXT_BYTES, JobFailure, JobRequest, JobSuccess

Request: TypeAlias = HealthRequest | JobRequest
Reply: TypeAlias = HealthReply | JobSuccess | JobFailure | ErrorReply
Message: TypeAlias = Request | Reply

REGISTRY = MessageRegistry(typing.get_args(Message))


def encode_message(message: Message) -> bytes:
    """CBOR bytes of a message (already validated by its constructor)."""
    return REGISTRY.encode(message)


def decode_message(data: bytes, *, max_ciphertext_bytes: int = MAX_CIPHERTEXT_BYTES) -> Message:
    """Parse and validate one message body. Raises ProtocolError (code unsupported_version/bad_request/...)."""
    # The registry was built from exactly the `Message` types, so whatever it decodes is one of them.
    message = cast("Message", REGISTRY.decode(data))
    if isinstance(message, JobRequest):
        message.check_ciphertext_limit(max_ciphertext_bytes)
    return message
