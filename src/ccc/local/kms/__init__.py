"""The local tier's attested-KMS emulator: what AWS KMS does that moto does not.

Modules:
    gateway       local HTTP KMS endpoint in front of moto that enforces key policies and Recipient
    gateway_core  request handling: SigV4 (`ccc.local.sigv4`), policy decision, Recipient verification, CMS answers
    policy_eval   the IAM key-policy subset the gateway enforces (fail closed)
    emulation     CiphertextForRecipient as KMS builds it
The enclave's side (Recipient, CMS unwrapping, ESDK keys) is `ccc_enclave.kms`. See docs/kms.md.
"""
