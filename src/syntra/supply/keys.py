"""ECDSA P-256 signing keys in cosign's format.

The private key is cosign's `ENCRYPTED SIGSTORE PRIVATE KEY`: a PKCS#8 key sealed with
NaCl secretbox under a key derived by scrypt from a passphrase in the environment (the
envelope of go-securesystemslib's `encrypted` package, which `cosign generate-key-pair`
writes). Keys in that format, its older `ENCRYPTED COSIGN PRIVATE KEY` name, and
passphrase-encrypted PKCS#8 PEM are all read. The public key is a PEM `PUBLIC KEY`,
which cosign takes as `--key` and skopeo/podman policies as keyPath. Signatures are
deterministic (RFC 6979): signing the same payload again gives the same bytes, so
re-running a stage changes nothing in the registry.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

import nacl.exceptions
import nacl.secret
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from syntra import process
from syntra.errors import SyntraError
from syntra.fsutil import write_atomic

if TYPE_CHECKING:
    from syntra.config import Loaded

ALGORITHM = ec.ECDSA(hashes.SHA256(), deterministic_signing=True)
COSIGN_PEM = "ENCRYPTED SIGSTORE PRIVATE KEY"
COSIGN_PEMS = (COSIGN_PEM, "ENCRYPTED COSIGN PRIVATE KEY")
SCRYPT = {"N": 65536, "r": 8, "p": 1}  # what cosign 2 writes


def _scrypt(secret: bytes, salt: bytes, params: dict[str, int]) -> bytes:
    n, r, p = params["N"], params["r"], params["p"]
    return hashlib.scrypt(secret, salt=salt, n=n, r=r, p=p, maxmem=256 * n * r, dklen=32)


def seal(der: bytes, secret: bytes) -> bytes:
    """`der` in cosign's encrypted PEM."""
    salt, nonce = secrets.token_bytes(32), secrets.token_bytes(24)
    box = nacl.secret.SecretBox(_scrypt(secret, salt, SCRYPT))
    sealed = box.encrypt(der, nonce).ciphertext

    def text(data: bytes) -> str:
        return base64.b64encode(data).decode()

    envelope = {
        "kdf": {"name": "scrypt", "params": SCRYPT, "salt": text(salt)},
        "cipher": {"name": "nacl/secretbox", "nonce": text(nonce)},
        "ciphertext": text(sealed),
    }
    body = base64.b64encode(json.dumps(envelope, separators=(",", ":")).encode()).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "\n".join(
        [f"-----BEGIN {COSIGN_PEM}-----", *lines, f"-----END {COSIGN_PEM}-----", ""]
    ).encode()


def unseal(pem: bytes, secret: bytes) -> bytes:
    """The PKCS#8 DER inside cosign's encrypted PEM; ValueError when the passphrase is
    wrong, TypeError when the envelope is not cosign's."""
    body = b"".join(line for line in pem.splitlines() if line and not line.startswith(b"-----"))
    try:
        envelope = json.loads(base64.b64decode(body))
        kdf, cipher = envelope["kdf"], envelope["cipher"]
        if kdf["name"] != "scrypt" or cipher["name"] != "nacl/secretbox":
            raise TypeError(f"{kdf['name']} with {cipher['name']}")
        salt, nonce = base64.b64decode(kdf["salt"]), base64.b64decode(cipher["nonce"])
        sealed = base64.b64decode(envelope["ciphertext"])
        key = _scrypt(secret, salt, kdf["params"])
    except (ValueError, KeyError, TypeError) as exc:
        raise TypeError(f"not cosign's envelope: {exc}") from None
    try:
        return nacl.secret.SecretBox(key).decrypt(sealed, nonce)
    except nacl.exceptions.CryptoError:
        raise ValueError("wrong passphrase") from None


def _pem_type(pem: bytes) -> str:
    first = pem.lstrip().split(b"\n", 1)[0].decode(errors="replace")
    return first.removeprefix("-----BEGIN ").removesuffix("-----").strip()


def public_path(private: Path) -> Path:
    return private.with_suffix(".pub")


def passphrase(variable: str) -> bytes:
    value = os.environ.get(variable)
    if value is None:  # empty is a passphrase too (cosign allows it)
        raise SyntraError(f"the signing key's passphrase is read from {variable}, which is not set")
    return process.keep_secret(value).encode()


def generate(private: Path, passphrase_env: str) -> Path:
    """Write a new key pair (`<key>` mode 0600 and `<key>.pub`); refuse to overwrite."""
    if private.exists():
        raise SyntraError(f"{private} exists; remove it first to make a new key")
    key = ec.generate_private_key(ec.SECP256R1())
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_atomic(private, seal(der, passphrase(passphrase_env)), mode=0o600)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    write_atomic(public_path(private), public)
    return public_path(private)


def load_private(root: Path, private: str, passphrase_env: str) -> ec.EllipticCurvePrivateKey:
    """The key at `private` (relative to `root`, and shown that way in errors)."""
    secret = passphrase(passphrase_env)
    try:
        pem = (root / private).read_bytes()
    except FileNotFoundError:
        raise SyntraError(f"{private}: no such key; make one with `syntra keygen`") from None
    except OSError as exc:
        raise SyntraError(f"{private}: cannot read it: {exc.strerror}") from None
    process.keep_secret(pem.decode(errors="replace"))  # sealed, yet no log shows it
    kind = _pem_type(pem)
    try:
        if kind in COSIGN_PEMS:
            key = serialization.load_der_private_key(unseal(pem, secret), None)
        elif kind == "ENCRYPTED PRIVATE KEY":
            key = serialization.load_pem_private_key(pem, secret)
        else:
            raise SyntraError(
                f"{private}: a {kind or 'non-PEM'} file, not an encrypted private key "
                f"(expected {COSIGN_PEM}, as `syntra keygen` and `cosign generate-key-pair` write)"
            )
    except ValueError:
        message = f"{private}: cannot decrypt it with the passphrase in {passphrase_env}"
        raise SyntraError(message) from None
    except TypeError:
        raise SyntraError(f"{private}: a damaged {kind} (not cosign's envelope)") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise SyntraError(f"{private}: not an ECDSA key")
    return key


def load_public(path: Path) -> ec.EllipticCurvePublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError):
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


def check_signing(loaded: Loaded) -> None:
    """In key mode the key exists and the passphrase opens it (before long work)."""
    mode = loaded.config.supply_chain.signing
    if mode.mode == "key" and mode.key:
        load_private(loaded.root, mode.key, mode.passphrase_env)
