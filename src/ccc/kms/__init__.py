"""KMS for the enclave: CMS unwrapping, attested KMS calls, ESDK keys, and the local attested-KMS gateway.

Modules:
    cms          CMS EnvelopedData (KMS `CiphertextForRecipient`): parse, decrypt, build
    recipient    EnclaveKeyPair (RSA-2048 per boot), AttestedKms (Decrypt/GenerateDataKey + Recipient)
    esdk_keys    attested master key + provider for aws-encryption-sdk (legacy interfaces)
    policy_eval  the IAM key-policy subset the local gateway enforces (fail closed)
    gateway      local HTTP KMS endpoint in front of moto that enforces key policies and Recipient
See docs/kms.md.
"""
