"""APK v2 signatures: ``.SIGN.RSA.<key>`` (SHA-1) and ``.SIGN.RSA256.<key>`` (SHA-256).

The signature segment precedes the control segment and signs the *compressed* bytes of
the control segment (for a package) or of the index tarball (for ``APKINDEX.tar.gz``)
with RSA PKCS#1 v1.5. Keys live in a keyring folder as ``<key name>`` PEM files, the
key name being exactly what follows ``.SIGN.RSA.`` (e.g. ``wolfi-signing.rsa.pub``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from qackage.errors import InputError, SignatureError

SIGN_PREFIXES = {".SIGN.RSA256.": "sha256", ".SIGN.RSA.": "sha1"}


@dataclass(frozen=True, slots=True)
class SignatureBlock:
    key_name: str
    algorithm: str  # "sha1" | "sha256"
    signature: bytes


def signature_from_member(name: str, data: bytes) -> SignatureBlock | None:
    for prefix, algorithm in SIGN_PREFIXES.items():
        if name.startswith(prefix):
            return SignatureBlock(name[len(prefix) :], algorithm, data)
    return None


@dataclass(frozen=True)
class Keyring:
    keys: Mapping[str, rsa.RSAPublicKey]
    origin: str

    @classmethod
    def load(cls, folder: str | Path) -> Keyring:
        path = Path(folder)
        if not path.is_dir():
            raise InputError(f"keyring {folder}: not a directory")
        keys: dict[str, rsa.RSAPublicKey] = {}
        for file in sorted(path.iterdir()):
            if not file.is_file():
                continue
            try:
                key = serialization.load_pem_public_key(file.read_bytes())
            except (ValueError, TypeError, OSError):
                continue  # not a public key (README, .gitkeep ...)
            if isinstance(key, rsa.RSAPublicKey):
                keys[file.name] = key
        if not keys:
            raise InputError(f"keyring {folder}: no RSA public keys found")
        return cls(keys, str(path))

    def verify(self, blocks: tuple[SignatureBlock, ...], digests: Mapping[str, bytes], label: str) -> str:
        """Return the name of the key whose signature verified, or raise SignatureError."""
        if not blocks:
            raise SignatureError(f"{label}: not signed, but a keyring was given")
        unknown: list[str] = []
        for block in blocks:
            key = self.keys.get(block.key_name)
            if key is None:
                unknown.append(block.key_name)
                continue
            algorithm: hashes.HashAlgorithm = hashes.SHA256() if block.algorithm == "sha256" else hashes.SHA1()  # noqa: S303 - the APK v2 format mandates it
            try:
                key.verify(
                    block.signature,
                    digests[block.algorithm],
                    padding.PKCS1v15(),
                    Prehashed(algorithm),
                )
            except InvalidSignature:
                raise SignatureError(
                    f"{label}: signature by {block.key_name} does not verify (tampered or wrong key)"
                ) from None
            return block.key_name
        raise SignatureError(f"{label}: signed by {', '.join(unknown)}, which is not in the keyring {self.origin}")
