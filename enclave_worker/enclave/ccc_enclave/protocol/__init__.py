"""The parent <-> enclave wire protocol: length-prefixed frames carrying versioned, strict CBOR messages.

The parent host is outside the trust boundary, so everything the enclave reads from the socket
is hostile until validated; every failure is a `ProtocolError`. See docs/protocol.md.

No message carries anything derived from image content in the clear: a job's count travels only
inside the result ciphertext for its tenant. (Releases `privacy_release`/`privacy_release_reply`
of earlier versions are gone: a host could replay jobs into them and read counts back.)

Modules (import from them directly; this package re-exports nothing, so each name has one home):

    errors            ErrorCode, RETRYABLE_CODES, ProtocolError (the one error root), FrameTooLarge, ...
    framing           read_frame / write_frame / encode_frame: length prefix, size limit, exact reads
    codec             strict CBOR, WireModel (a model's fields define its CBOR map), MessageRegistry
    fields            constrained value types shared by the messages (RequestId, Count, Number, ...)
    error_replies     ErrorInfo, ErrorReply (`error`)
    job_messages      JobRequest (`job`), JobSuccess / JobFailure (`job_reply`), JobSpec, Credentials, ...
    health_messages   HealthRequest (`health`), HealthReply (`health_reply`), EnclaveStatus, EnclaveMetrics
    messages          Message / Request / Reply, and encode_message / decode_message over all of them
"""
