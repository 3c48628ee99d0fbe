"""The enclave: everything that runs inside the Nitro Enclave, and nothing else.

Attested decrypt -> context check -> count -> encrypt -> attest (see docs/protocol.md). This
package and `ccc_core` are the distribution `ccc-enclave`, measured into PCR0 with its pinned
requirements and the model; it imports nothing else from this repository.

Run: `python -m ccc_enclave --listen URI --model-dir DIR --nsm device|simulated:<ca_dir>`.
"""
