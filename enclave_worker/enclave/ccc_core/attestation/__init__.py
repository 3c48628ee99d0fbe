"""The Nitro attestation document format: COSE_Sign1 (ES384) over a CBOR payload.

One format, one package: the enclave's NSM adapters produce documents with it and the client's
verifier (`ccc.attestation`) parses them with it. Parsing here establishes structure only; trust
(certificate chain, PCRs, freshness) is the verifier's job.
"""
