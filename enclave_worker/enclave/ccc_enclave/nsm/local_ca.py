"""A local certificate authority shaped like the AWS Nitro attestation PKI, for the local tier.

AWS: a self-signed P-384 root -> 3 intermediates (zonal, regional, instance; pathlen 2/1/0) ->
a leaf per attestation that lives ~3 hours and has no Authority Key Identifier. The simulated
NSM needs the same shape so that the *same* verifier code (`verify_document`) accepts local
documents when given this CA's root, and refuses them under the AWS root.

Keys are persisted unencrypted (it is a developer's local CA) but with 0600 permissions, and
`load` refuses key files other users can read.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ccc_enclave.errors import EnclaveError

DEFAULT_INTERMEDIATES = 3
ROOT_LIFETIME = timedelta(days=3650)
INTERMEDIATE_LIFETIME = timedelta(days=365)
LEAF_LIFETIME = timedelta(hours=3)
_ROOT_CERT, _ROOT_KEY = "root.crt", "root.key"
_CERT_SUFFIX, _KEY_SUFFIX = ".crt", ".key"


class LocalCAError(EnclaveError, RuntimeError):
    """The local CA directory is missing, inconsistent, expired or insecure."""


@dataclass(frozen=True)
class _Authority:
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "CCC Local"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Simulated NSM"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


_CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
    key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
)
_LEAF_KEY_USAGE = x509.KeyUsage(
    digital_signature=True, content_commitment=True, key_encipherment=False, data_encipherment=False,
    key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False,
)


class LocalNitroCA:
    """Root + intermediates on disk; issues one short-lived leaf per attestation document."""

    def __init__(self, root: _Authority, intermediates: list[_Authority]) -> None:
        if not intermediates:
            raise LocalCAError("a Nitro-shaped CA needs at least one intermediate")
        self._root = root
        self._intermediates = intermediates

    # ----- persistence -------------------------------------------------------------------
    @classmethod
    def create(
        cls, directory: Path, *, intermediates: int = DEFAULT_INTERMEDIATES, now: datetime | None = None
    ) -> LocalNitroCA:
        """Create a new CA in `directory` (made 0700), refusing to overwrite an existing one."""
        if not 1 <= intermediates <= 5:
            raise ValueError("intermediates must be 1..5")
        directory = Path(directory)
        if (directory / _ROOT_CERT).exists():
            raise LocalCAError(f"{directory} already holds a local CA; use LocalNitroCA.load")
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        now = _second(now or datetime.now(UTC))
        root_key = ec.generate_private_key(ec.SECP384R1())
        root_cert = _ca_certificate(
            subject=_name("ccc-local.nitro-enclaves"), key=root_key, issuer=None,
            path_length=None, not_before=now, not_after=now + ROOT_LIFETIME,
        )
        root = _Authority(root_cert, root_key)
        chain: list[_Authority] = []
        parent = root
        for position in range(1, intermediates + 1):
            key = ec.generate_private_key(ec.SECP384R1())
            cert = _ca_certificate(
                subject=_name(f"intermediate-{position}.ccc-local.nitro-enclaves"), key=key, issuer=parent,
                path_length=intermediates - position, not_before=now, not_after=now + INTERMEDIATE_LIFETIME,
            )
            parent = _Authority(cert, key)
            chain.append(parent)
        _write(directory, "root", root)
        for position, authority in enumerate(chain, start=1):
            _write(directory, f"intermediate-{position}", authority)
        return cls(root, chain)

    @classmethod
    def load(cls, directory: Path) -> LocalNitroCA:
        """Load a CA written by `create`, checking permissions, key/cert pairing and chain links."""
        directory = Path(directory)
        if not (directory / _ROOT_CERT).is_file():
            raise LocalCAError(f"{directory} holds no local CA (missing {_ROOT_CERT})")
        root = _read(directory, "root")
        chain: list[_Authority] = []
        position = 1
        while (directory / f"intermediate-{position}{_CERT_SUFFIX}").is_file():
            chain.append(_read(directory, f"intermediate-{position}"))
            position += 1
        parent = root
        for authority in [root, *chain]:
            try:
                authority.certificate.verify_directly_issued_by(parent.certificate)
            except Exception as exc:  # signature, name or algorithm mismatch: the directory is inconsistent
                raise LocalCAError(f"local CA chain in {directory} is broken ({exc})") from exc
            parent = authority
        return cls(root, chain)

    # ----- what verifiers need -----------------------------------------------------------
    @property
    def root_der(self) -> bytes:
        return self._root.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def root_pem(self) -> bytes:
        return self._root.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def cabundle(self) -> tuple[bytes, ...]:
        """`[ROOT, INTERM_1, ..., INTERM_N]` as DER, the order AWS puts in documents."""
        return tuple(
            authority.certificate.public_bytes(serialization.Encoding.DER)
            for authority in [self._root, *self._intermediates]
        )

    # ----- issuing -----------------------------------------------------------------------
    def issue_leaf(self, common_name: str, now: datetime) -> tuple[ec.EllipticCurvePrivateKey, bytes]:
        """A fresh P-384 key and its leaf certificate (DER), valid from `now` for LEAF_LIFETIME.

        Like AWS's, the leaf has basicConstraints cA=false and key usage, but no Authority or
        Subject Key Identifier.
        """
        issuer = self._intermediates[-1]
        not_before = _second(now)
        for authority in [self._root, *self._intermediates]:
            cert = authority.certificate
            if not cert.not_valid_before_utc <= not_before <= cert.not_valid_after_utc:
                subject = cert.subject.rfc4514_string()
                raise LocalCAError(f"local CA certificate {subject} is not valid at {not_before}; recreate the CA")
        not_after = min(not_before + LEAF_LIFETIME, issuer.certificate.not_valid_after_utc)
        key = ec.generate_private_key(ec.SECP384R1())
        certificate = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(issuer.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_LEAF_KEY_USAGE, critical=False)
            .sign(issuer.key, hashes.SHA384())
        )
        return key, certificate.public_bytes(serialization.Encoding.DER)


def _second(moment: datetime) -> datetime:
    """X.509 times have one-second resolution: truncate so `not_before <= document time`."""
    if moment.tzinfo is None:
        raise ValueError("time must be timezone-aware")
    return moment.astimezone(UTC).replace(microsecond=0)


def _ca_certificate(
    *,
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    issuer: _Authority | None,
    path_length: int | None,
    not_before: datetime,
    not_after: datetime,
) -> x509.Certificate:
    signer_name = subject if issuer is None else issuer.certificate.subject
    signer_key = key if issuer is None else issuer.key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(signer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(_CA_KEY_USAGE, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False
        )
    return builder.sign(signer_key, hashes.SHA384())


def _write(directory: Path, stem: str, authority: _Authority) -> None:
    key_pem = authority.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    key_path = directory / f"{stem}{_KEY_SUFFIX}"
    # Create with 0600 from the start: no window in which the key is world-readable.
    descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(key_pem)
    (directory / f"{stem}{_CERT_SUFFIX}").write_bytes(
        authority.certificate.public_bytes(serialization.Encoding.PEM)
    )


def _read(directory: Path, stem: str) -> _Authority:
    key_path = directory / f"{stem}{_KEY_SUFFIX}"
    cert_path = directory / f"{stem}{_CERT_SUFFIX}"
    try:
        mode = key_path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise LocalCAError(f"{key_path} is accessible by other users (mode {oct(mode & 0o777)}); chmod 600 it")
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except LocalCAError:
        raise
    except (OSError, ValueError, TypeError) as exc:
        raise LocalCAError(f"cannot read local CA {stem} from {directory}: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP384R1):
        raise LocalCAError(f"{key_path} is not a P-384 private key")
    if key.public_key() != certificate.public_key():
        raise LocalCAError(f"{key_path} does not belong to {cert_path}")
    return _Authority(certificate, key)
