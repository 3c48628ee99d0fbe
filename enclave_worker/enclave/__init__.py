"""The in-enclave server: attested decrypt, context check, count, encrypt, attest; see docs/protocol.md.

Run: `python -m enclave_worker.enclave --listen URI --model-dir DIR --nsm device|simulated:<ca_dir>`.
"""
