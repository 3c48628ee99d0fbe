"""CMS EnvelopedData as AWS KMS returns it in `CiphertextForRecipient`.

Why this module exists: when a KMS request carries `Recipient` (an attestation document with an
RSA public key), KMS does not return `Plaintext`; it wraps the plaintext in a CMS EnvelopedData
(RFC 5652) for that key. The shape is fixed and narrow:

* BER with indefinite lengths on the outer structures;
* one KeyTransRecipientInfo, version 2, recipient identified by subjectKeyIdentifier =
  SHA-256(SubjectPublicKeyInfo DER);
* key transport RSAES-OAEP with SHA-256 and MGF1-SHA-256 (not the SHA-1 defaults), empty label;
* content AES-256-CBC with a 16-byte IV and PKCS#7 padding; the encrypted content may be a
  primitive `[0]` or a constructed `[0]` holding OCTET STRING chunks.

`cryptography`'s PKCS7 API cannot read it (no OAEP, no indefinite lengths, wants a certificate),
so `asn1crypto` parses and `cryptography` primitives do the RSA and AES work. Everything outside
that shape is refused with `CmsError`: the enclave must never "best-effort" a key it unwraps.

`build_enveloped_data` produces the same shape; the local attested-KMS gateway uses it to answer
like KMS does.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass

from asn1crypto import algos, cms, core
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives import padding as sym_padding
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ccc_enclave.errors import EnclaveError

# KMS answers are small (a data key or a <= 4 KiB plaintext); anything far larger is not KMS.
MAX_CMS_BYTES = 1 << 20
# Chunk size for the constructed encrypted content, as KMS sends it.
_CONTENT_CHUNK = 1024
_AES_BLOCK = 16
_RSA_KEY_BITS = 2048


class CmsError(EnclaveError, ValueError):
    """The input is not a CMS EnvelopedData of the KMS shape, or does not open with this key."""


@dataclass(frozen=True)
class EnvelopedParts:
    """The fields of a KMS-shaped EnvelopedData that decryption needs."""

    recipient_key_id: bytes
    encrypted_key: bytes
    iv: bytes
    encrypted_content: bytes


def recipient_key_id(public_key_der: bytes) -> bytes:
    """The subjectKeyIdentifier KMS uses: SHA-256 of the recipient's SubjectPublicKeyInfo DER."""
    return hashlib.sha256(public_key_der).digest()


def _oaep_params() -> algos.RSAESOAEPParams:
    # Explicit NULL parameters on the hash algorithms: byte-for-byte what KMS emits.
    return algos.RSAESOAEPParams(
        {
            "hash_algorithm": {"algorithm": "sha256", "parameters": core.Null()},
            "mask_gen_algorithm": {
                "algorithm": "mgf1",
                "parameters": {"algorithm": "sha256", "parameters": core.Null()},
            },
        }
    )


def _kms_key_encryption_algorithm() -> bytes:
    return cms.KeyEncryptionAlgorithm({"algorithm": "rsaes_oaep", "parameters": _oaep_params()}).dump()


# The AlgorithmIdentifier KMS sends, byte for byte (every real answer in /work/shared/vectors/kms_cms).
_KMS_KEY_ENCRYPTION_ALGORITHM = _kms_key_encryption_algorithm()


def _check_key_encryption_algorithm(alg: cms.KeyEncryptionAlgorithm) -> None:
    """RSAES-OAEP with SHA-256, MGF1-SHA-256 and an empty label, encoded exactly as KMS encodes it.

    The byte comparison is the check (and parses nothing: asn1crypto takes ~0.3 ms to parse these
    parameters); the field checks below only say what is wrong when the bytes differ.
    """
    if alg.dump() == _KMS_KEY_ENCRYPTION_ALGORITHM:
        return
    if alg["algorithm"].native != "rsaes_oaep":
        raise CmsError(f"key transport {alg['algorithm'].dotted} is not RSAES-OAEP")
    params = alg["parameters"]
    if not isinstance(params, algos.RSAESOAEPParams):
        raise CmsError("RSAES-OAEP parameters are missing")
    if params["hash_algorithm"]["algorithm"].native != "sha256":
        raise CmsError("RSAES-OAEP hash is not SHA-256")
    mgf = params["mask_gen_algorithm"]
    if mgf["algorithm"].native != "mgf1":
        raise CmsError("RSAES-OAEP mask generation is not MGF1")
    if mgf["parameters"]["algorithm"].native != "sha256":
        raise CmsError("RSAES-OAEP MGF1 hash is not SHA-256")
    p_source = params["p_source_algorithm"]
    if p_source["algorithm"].native != "p_specified" or p_source["parameters"].native not in (b"", None):
        raise CmsError("RSAES-OAEP label is not empty")
    raise CmsError("RSAES-OAEP parameters are not encoded the way KMS encodes them")


def _parse(ber: bytes) -> EnvelopedParts:
    content_info = cms.ContentInfo.load(ber, strict=True)
    if content_info["content_type"].native != "enveloped_data":
        raise CmsError(f"content type is {content_info['content_type'].dotted}, not envelopedData")
    enveloped = content_info["content"]
    if not isinstance(enveloped, cms.EnvelopedData):
        raise CmsError("content is not an EnvelopedData")
    if enveloped["version"].native != "v2":
        raise CmsError(f"unexpected EnvelopedData version {enveloped['version'].native}")
    recipient_infos = enveloped["recipient_infos"]
    if len(recipient_infos) != 1:
        raise CmsError(f"expected exactly one recipient, found {len(recipient_infos)}")
    info = recipient_infos[0]
    if info.name != "ktri":
        raise CmsError(f"recipient info is {info.name}, not KeyTransRecipientInfo")
    ktri = info.chosen
    if ktri["version"].native != "v2":
        raise CmsError("KeyTransRecipientInfo version is not 2")
    rid = ktri["rid"]
    if rid.name != "subject_key_identifier":
        raise CmsError(f"recipient identifier is {rid.name}, not subjectKeyIdentifier")
    key_id = rid.chosen.native
    _check_key_encryption_algorithm(ktri["key_encryption_algorithm"])
    encrypted_key = ktri["encrypted_key"].native

    content = enveloped["encrypted_content_info"]
    if content["content_type"].native != "data":
        raise CmsError("encrypted content type is not id-data")
    cea = content["content_encryption_algorithm"]
    if cea["algorithm"].native != "aes256_cbc":
        raise CmsError(f"content encryption {cea['algorithm'].dotted} is not AES-256-CBC")
    iv = cea["parameters"].native
    if not isinstance(iv, bytes) or len(iv) != _AES_BLOCK:
        raise CmsError("AES-256-CBC IV is not 16 bytes")
    encrypted_content = content["encrypted_content"].native
    if not isinstance(encrypted_content, bytes):
        raise CmsError("encrypted content is absent")
    if not encrypted_content or len(encrypted_content) % _AES_BLOCK:
        raise CmsError("encrypted content is not a non-empty multiple of the AES block size")
    if not isinstance(key_id, bytes) or not isinstance(encrypted_key, bytes):
        raise CmsError("recipient identifier or encrypted key is not an octet string")
    # Every field has now been parsed or compared byte for byte (asn1crypto parses lazily), except
    # the two optional ones, which KMS never sends. Cheaper than touching `enveloped.native`, which
    # parsed and converted the whole tree again (~1.1 ms per KMS answer, two per job).
    if enveloped["originator_info"].native is not None or enveloped["unprotected_attrs"].native is not None:
        raise CmsError("EnvelopedData carries originator info or unprotected attributes; KMS sends neither")
    return EnvelopedParts(
        recipient_key_id=key_id, encrypted_key=encrypted_key, iv=iv, encrypted_content=encrypted_content
    )


def parse_enveloped_data(ber: bytes) -> EnvelopedParts:
    """Parse and shape-check a KMS `CiphertextForRecipient`; any deviation raises CmsError."""
    if not isinstance(ber, bytes | bytearray | memoryview):
        raise CmsError("CMS input must be bytes")
    data = bytes(ber)
    if not data:
        raise CmsError("CMS input is empty")
    if len(data) > MAX_CMS_BYTES:
        raise CmsError(f"CMS input of {len(data)} bytes exceeds {MAX_CMS_BYTES}")
    try:
        return _parse(data)
    except CmsError:
        raise
    except Exception as exc:  # asn1crypto raises ValueError, TypeError, KeyError, ... lazily
        raise CmsError(f"malformed CMS EnvelopedData: {type(exc).__name__}: {exc}") from None


def _public_key_der(private_key: rsa.RSAPrivateKey) -> bytes:
    return private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _oaep() -> padding.OAEP:
    return padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


def decrypt_for_recipient(ber: bytes, private_key: rsa.RSAPrivateKey) -> bytes:
    """Open a KMS `CiphertextForRecipient` with the enclave's private key; returns the plaintext."""
    if not isinstance(private_key, rsa.RSAPrivateKey):
        raise CmsError("recipient key must be an RSA private key")
    parts = parse_enveloped_data(ber)
    expected_id = recipient_key_id(_public_key_der(private_key))
    if not hmac.compare_digest(parts.recipient_key_id, expected_id):
        raise CmsError("CMS is addressed to another recipient (subjectKeyIdentifier mismatch)")
    try:
        content_key = private_key.decrypt(parts.encrypted_key, _oaep())
    except ValueError:
        raise CmsError("RSAES-OAEP unwrap of the content key failed") from None
    if len(content_key) != 32:
        raise CmsError(f"content key is {len(content_key)} bytes, AES-256 needs 32")
    decryptor = Cipher(algorithms.AES(content_key), modes.CBC(parts.iv)).decryptor()
    padded = decryptor.update(parts.encrypted_content) + decryptor.finalize()
    unpadder = sym_padding.PKCS7(_AES_BLOCK * 8).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise CmsError("PKCS#7 padding of the decrypted content is invalid") from None


# --- building (for the local gateway) ---------------------------------------------------------


def _tlv(tag: bytes, content: bytes) -> bytes:
    """DER tag-length-value with a definite length."""
    n = len(content)
    if n < 0x80:
        length = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return tag + length + content


def _indefinite(tag: bytes, *parts: bytes) -> bytes:
    """BER constructed encoding with indefinite length, terminated by end-of-contents."""
    return tag + b"\x80" + b"".join(parts) + b"\x00\x00"


def encode_enveloped_data(*, recipient_id: bytes, encrypted_key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    """Encode already-encrypted parts in KMS's BER layout (indefinite outer lengths, chunked content)."""
    ktri = cms.KeyTransRecipientInfo(
        {
            "version": "v2",
            "rid": cms.RecipientIdentifier(name="subject_key_identifier", value=core.OctetString(recipient_id)),
            "key_encryption_algorithm": {"algorithm": "rsaes_oaep", "parameters": _oaep_params()},
            "encrypted_key": encrypted_key,
        }
    )
    recipient_infos = cms.RecipientInfos([cms.RecipientInfo(name="ktri", value=ktri)])
    cea = cms.EncryptionAlgorithm({"algorithm": "aes256_cbc", "parameters": core.OctetString(iv)})
    chunks = b"".join(
        _tlv(b"\x04", ciphertext[i : i + _CONTENT_CHUNK]) for i in range(0, len(ciphertext), _CONTENT_CHUNK)
    )
    encrypted_content_info = _indefinite(
        b"\x30",
        core.ObjectIdentifier("1.2.840.113549.1.7.1").dump(),
        cea.dump(),
        _indefinite(b"\xa0", chunks),
    )
    enveloped = _indefinite(b"\x30", core.Integer(2).dump(), recipient_infos.dump(), encrypted_content_info)
    return _indefinite(b"\x30", core.ObjectIdentifier("1.2.840.113549.1.7.3").dump(), _indefinite(b"\xa0", enveloped))


def _load_recipient_public_key(public_key_der: bytes) -> rsa.RSAPublicKey:
    try:
        key = serialization.load_der_public_key(public_key_der)
    except (ValueError, TypeError):
        raise CmsError("recipient public key is not a DER SubjectPublicKeyInfo") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise CmsError("recipient public key is not RSA")
    if key.key_size != _RSA_KEY_BITS:
        raise CmsError(f"recipient public key is RSA-{key.key_size}, KMS requires RSA-2048")
    return key


def build_enveloped_data(plaintext: bytes, recipient_public_key_der: bytes) -> bytes:
    """Wrap `plaintext` for an RSA-2048 recipient exactly as KMS builds `CiphertextForRecipient`."""
    if not isinstance(plaintext, bytes | bytearray):
        raise CmsError("plaintext must be bytes")
    public_key = _load_recipient_public_key(recipient_public_key_der)
    spki = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    content_key = os.urandom(32)
    iv = os.urandom(_AES_BLOCK)
    padder = sym_padding.PKCS7(_AES_BLOCK * 8).padder()
    padded = padder.update(bytes(plaintext)) + padder.finalize()
    encryptor = Cipher(algorithms.AES(content_key), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    return encode_enveloped_data(
        recipient_id=recipient_key_id(spki),
        encrypted_key=public_key.encrypt(content_key, _oaep()),
        iv=iv,
        ciphertext=ciphertext,
    )
