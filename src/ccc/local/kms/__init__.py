"""The local tier's attested-KMS emulator: what AWS KMS does that moto does not.

Modules:
    gateway          local HTTP KMS endpoint that enforces key policies and Recipient (moto's KMS is not used)
    gateway_core     request handling: SigV4 (`ccc.local.sigv4`), policy decision, Recipient verification, CMS answers
    operations       what KMS does with an authorised request (key states, answers, error codes)
    key_store        the keys the gateway holds (persisted under the stack's state dir), aliases, grants
    ciphertext       blob format: AES-256-GCM, key id + canonical context as AAD
    context_binding  the canonical (length-prefixed) encryption-context bytes
    policy_eval      the IAM key-policy subset the gateway enforces (fail closed)
    emulation     CiphertextForRecipient as KMS builds it
The enclave's side (Recipient, CMS unwrapping, ESDK keys) is `ccc_enclave.kms`. See docs/kms.md.
"""
