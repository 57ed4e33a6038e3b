"""C2PA content credentials (c2pa-python): where a signing certificate is configured
(FRAMECAST_C2PA_CERT_FILE, FRAMECAST_C2PA_KEY_FILE), each MP4 carries a signed manifest
saying it was created by an AI model (IPTC digital source type trainedAlgorithmicMedia),
which model, and when. The verifier reads manifests back. Unset: signing is skipped.

A manifest is bound to the file's bytes: any re-encode or edit drops or breaks it, which
is why the invisible watermark is the durable part of Framecast's provenance.
"""

from __future__ import annotations

import io
import json
import logging
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

logger = logging.getLogger(__name__)

AI_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"


def signing_configured() -> bool:
    return bool(settings.FRAMECAST_C2PA_CERT_FILE and settings.FRAMECAST_C2PA_KEY_FILE)


@lru_cache(maxsize=2)
def _signing_material(cert_file: str, key_file: str) -> tuple[bytes, bytes, str]:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        chain, key = Path(cert_file).read_bytes(), Path(key_file).read_bytes()
        private_key = load_pem_private_key(key, password=None)
    except (OSError, ValueError, TypeError) as error:
        raise ImproperlyConfigured(f"Cannot use the C2PA certificate/key ({cert_file}, {key_file}): {error}") from None
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        alg = {256: "es256", 384: "es384", 521: "es512"}[private_key.curve.key_size]
    elif isinstance(private_key, rsa.RSAPrivateKey):
        alg = "ps256"
    elif isinstance(private_key, ed25519.Ed25519PrivateKey):
        alg = "ed25519"
    else:
        raise ImproperlyConfigured(f"{key_file}: C2PA signs with EC, RSA (PSS) or Ed25519 keys only.")
    return chain, key, alg


def sign_mp4(video: bytes, *, model_name: str, created_at: datetime, title: str = "video.mp4") -> bytes:
    """The MP4 with a signed C2PA manifest, or unchanged when no certificate is configured."""
    if not signing_configured():
        return video
    import c2pa

    chain, key, alg = _signing_material(settings.FRAMECAST_C2PA_CERT_FILE, settings.FRAMECAST_C2PA_KEY_FILE)
    manifest = {
        "claim_generator_info": [{"name": "Framecast", "version": "1"}],
        "title": title,
        "format": "video/mp4",
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created",
                            "digitalSourceType": AI_SOURCE_TYPE,
                            "softwareAgent": {"name": f"Framecast / {model_name}"},
                            "when": created_at.isoformat(),
                        }
                    ]
                },
            }
        ],
    }
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(alg=alg.encode(), sign_cert=chain, private_key=key, ta_url=None))
    signed = io.BytesIO()
    with c2pa.Builder(manifest) as builder:
        builder.sign(signer, "video/mp4", io.BytesIO(video), signed)
    return signed.getvalue()


def read_manifest(data: bytes) -> dict | None:
    """The facts of the file's active C2PA manifest, or None if it has none (or it cannot
    be read). `valid`: the signature and the hashes of the content check out; `trusted`:
    the signer's certificate chains to a trust anchor the reader knows."""
    try:
        import c2pa

        reader = c2pa.Reader.try_create("video/mp4", io.BytesIO(data))
        if reader is None:
            return None
        with reader:
            store = json.loads(reader.json())
    except Exception as error:  # noqa: BLE001 - a damaged or foreign manifest is "none readable"
        logger.info("No readable C2PA manifest: %s", error)
        return None
    manifest = store.get("manifests", {}).get(store.get("active_manifest", ""), {})
    created = {}
    for assertion in manifest.get("assertions", []):
        if assertion.get("label", "").startswith("c2pa.actions"):
            created = next((a for a in assertion.get("data", {}).get("actions", []) if a.get("action") == "c2pa.created"), created)
    codes = [status.get("code", "") for status in store.get("validation_status", [])]
    generator = (manifest.get("claim_generator_info") or [{}])[0].get("name", "") or manifest.get("claim_generator", "")
    agent = created.get("softwareAgent", {})
    return {
        "generator": generator,
        "ai_generated": created.get("digitalSourceType", "").endswith("/trainedAlgorithmicMedia"),
        "software_agent": agent.get("name", "") if isinstance(agent, dict) else str(agent),
        "when": created.get("when", ""),
        "signer": manifest.get("signature_info", {}).get("issuer", ""),
        "signed_at": manifest.get("signature_info", {}).get("time", ""),
        "valid": not any(code != "signingCredential.untrusted" for code in codes),
        "trusted": not codes,
        "problems": codes,
    }


def make_test_certificate(directory: Path) -> tuple[Path, Path]:
    """A private CA and a signing certificate from it (ES256, 90 days), for development and
    tests: manifests signed with it are valid but untrusted anywhere else. Production
    uses a certificate from a CA on the C2PA trust list. Returns (chain file, key file)."""
    from datetime import UTC, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Framecast (development)")])

    now = datetime.now(UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())

    def certificate(subject, issuer, public_key, signing_key, *, ca: bool):
        builder = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=90))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        )
        if ca:
            builder = builder.add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        else:
            # C2PA requires a signing certificate with digitalSignature and an allowed EKU.
            builder = (
                builder.add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            )
        return builder.sign(signing_key, hashes.SHA256())

    ca_cert = certificate(name("Framecast development CA"), name("Framecast development CA"), ca_key.public_key(), ca_key, ca=True)
    leaf = certificate(name("Framecast development signer"), ca_cert.subject, key.public_key(), ca_key, ca=False)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    chain_file, key_file = directory / "c2pa-chain.pem", directory / "c2pa-key.pem"
    chain_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM) + ca_cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_file.chmod(0o600)
    return chain_file, key_file
