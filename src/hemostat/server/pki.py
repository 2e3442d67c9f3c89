"""The site PKI (contract §2): a CA made by ``hemostat init``, the collector's certificate
it signs, and the client context that trusts that CA only (agents pin it).

``HOME/pki/``: ``ca.pem``, ``ca-key.pem`` (0600), ``collector.pem``, ``collector-key.pem``
(0600). Keys are ECDSA P-256. The collector's certificate names localhost, 127.0.0.1, ::1
and the names and addresses given; ``server_certificate`` re-issues it when the collector
is bound to an address it does not name.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hemostat.errors import ConfigError
from hemostat.server.auth import write_private

DIR = Path("pki")
DEFAULT_NAMES = ("localhost",)
DEFAULT_IPS = ("127.0.0.1", "::1")
CA_DAYS = 3650
CERT_DAYS = 825

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class Pki:
    """Where one home's PKI files are."""

    dir: Path

    @classmethod
    def of(cls, home: Path) -> Pki:
        return cls(Path(home) / DIR)

    @property
    def ca(self) -> Path:
        return self.dir / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.dir / "ca-key.pem"

    @property
    def cert(self) -> Path:
        return self.dir / "collector.pem"

    @property
    def key(self) -> Path:
        return self.dir / "collector-key.pem"


def init(
    home: Path, names: tuple[str, ...] = (), ips: tuple[str, ...] = (), site: str = "hemostat"
) -> tuple[Pki, bool]:
    """Create the site CA (kept when it exists: agents pin it) and issue the collector's
    certificate for ``names`` and ``ips``. Returns the PKI and whether the CA is new."""
    pki = Pki.of(home)
    addresses = tuple(_address(ip) for ip in ips)
    created = not pki.ca.exists()
    if created:
        key = ec.generate_private_key(ec.SECP256R1())
        _write_key(pki.ca_key, key)
        _write_cert(pki.ca, _ca_certificate(key, site))
    issue(pki, (*DEFAULT_NAMES, *names), (*(_address(i) for i in DEFAULT_IPS), *addresses))
    return pki, created


def issue(pki: Pki, names: tuple[str, ...], ips: tuple[Address, ...]) -> None:
    """(Re-)issue the collector's certificate, signed by the site CA, for these SANs."""
    ca_cert, ca_key = _load_ca(pki)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dict.fromkeys(names)]
    sans += [x509.IPAddress(ip) for ip in dict.fromkeys(ips)]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hemostat collector")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=CERT_DAYS))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write_key(pki.key, key)
    _write_cert(pki.cert, cert)


def server_certificate(home: Path, host: str) -> Pki:
    """The PKI to serve on ``host``; the certificate is re-issued (same CA) when it does
    not name ``host`` (a wildcard bind such as 0.0.0.0 is served as it is)."""
    pki = Pki.of(home)
    if not pki.ca.exists() or not pki.cert.exists():
        raise ConfigError(f"no site PKI in {pki.dir}; run hemostat init [--name N] [--ip IP]")
    names, ips = sans(pki.cert)
    try:
        address: Address | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None and address.is_unspecified:
        return pki
    if (address is None and host not in names) or (address is not None and address not in ips):
        more_names = names + ((host,) if address is None else ())
        issue(pki, more_names, ips + ((address,) if address is not None else ()))
    return pki


def sans(cert_path: Path) -> tuple[tuple[str, ...], tuple[Address, ...]]:
    """The DNS names and IP addresses a certificate is valid for."""
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    ips = [ip for ip in ext.get_values_for_type(x509.IPAddress) if isinstance(ip, Address)]
    return tuple(ext.get_values_for_type(x509.DNSName)), tuple(ips)


def client_context(ca: Path) -> ssl.SSLContext:
    """A TLS client context that trusts the site CA and nothing else (CA pinning)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_verify_locations(cafile=str(ca))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"{ca}: not a usable CA certificate ({exc})") from exc
    return ctx


def _ca_certificate(key: ec.EllipticCurvePrivateKey, site: str) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{site} site CA (hemostat)")])
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )


def _usage(cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign,
        crl_sign=cert_sign, encipher_only=False, decipher_only=False,
    )  # fmt: skip


def _load_ca(pki: Pki) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    try:
        cert = x509.load_pem_x509_certificate(pki.ca.read_bytes())
        key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"{pki.dir}: cannot load the site CA ({exc}); rerun hemostat init"
        ) from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ConfigError(f"{pki.ca_key}: not an EC key made by hemostat init")
    return cert, key


def _address(text: str) -> Address:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise ConfigError(f"--ip {text!r}: not an IP address") from None


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    write_private(path, key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))  # fmt: skip


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    write_private(path, cert.public_bytes(serialization.Encoding.PEM))
    os.chmod(path, 0o644)
