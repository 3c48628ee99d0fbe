"""The enclave's side of attested KMS: per-boot RSA key pair and Recipient calls (`recipient`),
CMS EnvelopedData unwrapping (`cms`), and ESDK master keys that use them (`esdk_keys`)."""
