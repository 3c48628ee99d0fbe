"""Parent agent and enclave server of the Confidential Cat Counter (see docs/protocol.md).

Modules:
    protocol   length-prefixed frames, versioned strict CBOR messages, error codes
    transport  vsock:// tcp:// unix:// endpoints, listener, timed message channel
    enclave    in-enclave server: attested decrypt -> context check -> count -> encrypt -> attest
    parent     host agent: SQS -> S3 inbox -> enclave -> S3 results, IMDSv2, drain
    relay      byte relay (in-enclave TCP -> vsock-proxy path to KMS)
    logs       metadata-only JSON-lines logging shared by both processes
"""
