"""Ed25519 signatures over canonical JSON, for downlink commands from the station.

The signature covers every field of the command except ``sig`` itself, serialised with sorted
keys and no whitespace, so any re-ordering by a broker or bridge does not break it.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


def canonical(payload: dict[str, Any]) -> bytes:
    """The bytes that are signed: the payload without ``sig``, keys sorted, compact UTF-8."""
    body = {k: v for k, v in payload.items() if k != "sig"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(payload: dict[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    """Return a copy of `payload` with its base64 ``sig``."""
    signature = key.sign(canonical(payload))
    return {**payload, "sig": base64.b64encode(signature).decode("ascii")}


def verify(payload: dict[str, Any], key: Ed25519PublicKey) -> bool:
    """True when ``sig`` is a valid signature of the rest of `payload` by `key`."""
    sig = payload.get("sig")
    if not isinstance(sig, str):
        return False
    try:
        key.verify(base64.b64decode(sig, validate=True), canonical(payload))
    except (InvalidSignature, ValueError):
        return False
    return True


def generate_keypair(folder: Path, name: str = "station") -> tuple[Path, Path]:
    """Write ``<name>.key`` (PKCS#8 PEM, mode 0600) and ``<name>.pub`` into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    private = folder / f"{name}.key"
    public = folder / f"{name}.pub"
    private.touch(mode=0o600)
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


def load_private_key(data: bytes) -> Ed25519PrivateKey:
    """Parse a PEM Ed25519 private key; ValueError if it is anything else."""
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("the station key must be an Ed25519 private key")  # noqa: TRY004
    return key


def load_public_key(data: bytes) -> Ed25519PublicKey:
    """Parse a PEM Ed25519 public key; ValueError if it is anything else."""
    key = serialization.load_pem_public_key(data)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("the station public key must be an Ed25519 key")  # noqa: TRY004
    return key
