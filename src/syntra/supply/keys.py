"""ECDSA P-256 signing keys, as cosign uses them.

The private key is PKCS#8 PEM encrypted with a passphrase from the environment;
the public key is a PEM `PUBLIC KEY`, which skopeo/podman policies take as keyPath.
Signatures are deterministic (RFC 6979): signing the same payload again gives the
same bytes, so re-running a stage changes nothing in the registry.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from syntra.errors import SyntraError
from syntra.fsutil import write_atomic

ALGORITHM = ec.ECDSA(hashes.SHA256(), deterministic_signing=True)


def public_path(private: Path) -> Path:
    return private.with_suffix(".pub")


def passphrase(variable: str) -> bytes:
    value = os.environ.get(variable)
    if not value:
        raise SyntraError(f"the signing key's passphrase is read from {variable}, which is not set")
    return value.encode()


def generate(private: Path, passphrase_env: str) -> Path:
    """Write a new key pair (`<key>` mode 0600 and `<key>.pub`); refuse to overwrite."""
    if private.exists():
        raise SyntraError(f"{private} exists; remove it first to make a new key")
    key = ec.generate_private_key(ec.SECP256R1())
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase(passphrase_env)),
    )
    write_atomic(private, encrypted, mode=0o600)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    write_atomic(public_path(private), public)
    return public_path(private)


def load_private(root: Path, private: str, passphrase_env: str) -> ec.EllipticCurvePrivateKey:
    """The key at `private` (relative to `root`, and shown that way in errors)."""
    secret = passphrase(passphrase_env)
    try:
        key = serialization.load_pem_private_key((root / private).read_bytes(), secret)
    except FileNotFoundError:
        raise SyntraError(f"{private}: no such key; make one with `syntra keygen`") from None
    except (ValueError, TypeError):
        message = f"{private}: cannot decrypt it with the passphrase in {passphrase_env}"
        raise SyntraError(message) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise SyntraError(f"{private}: not an ECDSA key")
    return key


def load_public(path: Path) -> ec.EllipticCurvePublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (FileNotFoundError, ValueError):
        raise SyntraError(f"{path}: not a readable public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise SyntraError(f"{path}: not an ECDSA public key")
    return key


def sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    return key.sign(data, ALGORITHM)


def verifies(key: ec.EllipticCurvePublicKey, data: bytes, signature: bytes) -> bool:
    try:
        key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True
