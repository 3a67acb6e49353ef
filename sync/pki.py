"""A small private PKI for the broker link: a CA, the broker, the station and each gateway.

Mosquitto authenticates clients by their certificate (``require_certificate true``) and takes
the certificate's common name as the MQTT user name (``use_identity_as_username true``). The
ACL (``deploy/mosquitto.acl``) then confines each identity with ``pattern`` lines, so the
common-name convention *is* the authorisation model:

- a gateway's CN is ``<site>/<gateway>`` (:func:`gateway_identity`), so ``%u`` in a pattern
  expands to exactly the two topic levels under ``doorgate/v1/``;
- the station's CN is ``station`` (:data:`STATION_IDENTITY`) and Home Assistant's
  ``homeassistant`` (:data:`HOMEASSISTANT_IDENTITY`), granted by ``user`` blocks.

Keys are ECDSA P-256 (fast to generate on a Pi, accepted by every TLS stack); certificates carry
the extensions strict verifiers want (key identifiers, key usage, extended key usage, SANs).
Only the standard library and ``cryptography`` are used, so ``deploy/make-certs.py`` runs from
a checkout without the rest of doorgate installed.
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

STATION_IDENTITY = "station"
"""Common name (hence MQTT user name) of the station's client certificate."""
HOMEASSISTANT_IDENTITY = "homeassistant"
"""Common name of Home Assistant's client certificate (reads status, door events, alerts)."""

_SEGMENT = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_VALIDITY_SLACK = dt.timedelta(minutes=5)  # tolerate a gateway clock slightly behind the CA's


def gateway_identity(site: str, gateway: str) -> str:
    """The certificate common name (and MQTT user name) of one gateway.

    Args:
        site: the site code, one topic segment (letters, digits, ``-``, ``_``).
        gateway: the gateway name within the site, one topic segment.

    Returns:
        ``"<site>/<gateway>"``: an ACL ``pattern`` line with ``%u`` then expands to the
        gateway's own topic root ``doorgate/v1/<site>/<gateway>``.

    Raises:
        ValueError: a name is not a single safe topic segment (``+``, ``#`` or ``/`` in a name
            would widen the ACL pattern to other gateways' topics).
    """
    for value, what in ((site, "site"), (gateway, "gateway")):
        if not _SEGMENT.match(value):
            raise ValueError(f"{what} must be 1-64 letters, digits, '-' or '_' (got {value!r})")
    return f"{site}/{gateway}"


@dataclass(frozen=True, slots=True)
class Issued:
    """A certificate and its private key, both PEM-encoded.

    Attributes:
        cert_pem: the certificate.
        key_pem: the unencrypted PKCS#8 private key (store it mode 0600).
    """

    cert_pem: bytes
    key_pem: bytes

    def write(self, cert_path: Path, key_path: Path) -> None:
        """Write the certificate (mode 0644) and the key (mode 0600, never world-readable).

        Args:
            cert_path: where the certificate goes.
            key_path: where the private key goes.
        """
        write_file(cert_path, self.cert_pem, private=False)
        write_file(key_path, self.key_pem, private=True)


def write_file(path: Path, data: bytes, *, private: bool) -> None:
    """Write ``data`` to ``path``, creating parent folders; private files get mode 0600.

    The file is created with its final mode, so a private key is never readable by others,
    not even for an instant.

    Args:
        path: the file to (over)write.
        data: its content.
        private: True for private keys.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = 0o600 if private else 0o644
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, mode)  # O_CREAT's mode does not apply to an existing file


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name(common_name: str, organisation: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


class CertificateAuthority:
    """A CA that signs the broker's, the station's and the gateways' certificates.

    Args:
        key: the CA's private key.
        cert: the CA's self-signed certificate.
    """

    def __init__(self, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> None:
        self.key = key
        self.cert = cert

    @classmethod
    def create(
        cls, common_name: str = "doorgate CA", *, organisation: str = "doorgate", days: int = 3650
    ) -> CertificateAuthority:
        """Generate a new CA key and self-signed certificate.

        Args:
            common_name: the CA's subject common name.
            organisation: the subject organisation.
            days: validity in days.

        Returns:
            The new CA.
        """
        key = _new_key()
        subject = _name(common_name, organisation)
        now = dt.datetime.now(dt.UTC)
        public = key.public_key()
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _VALIDITY_SLACK)
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert)

    @classmethod
    def load(cls, cert_path: Path, key_path: Path) -> CertificateAuthority:
        """Load an existing CA (to issue one more gateway certificate later).

        Args:
            cert_path: the CA certificate (PEM).
            key_path: the CA private key (PEM, unencrypted).

        Returns:
            The CA.

        Raises:
            TypeError: the key is not an elliptic-curve key.
        """
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise TypeError(f"{key_path}: expected an EC private key")
        return cls(key, x509.load_pem_x509_certificate(cert_path.read_bytes()))

    @property
    def cert_pem(self) -> bytes:
        """The CA certificate, PEM: what every party gets as ``ca.crt``."""
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        """The CA private key, PEM: keep it offline."""
        return _key_pem(self.key)

    def _issue(
        self,
        common_name: str,
        usage: x509.ObjectIdentifier,
        days: int,
        san: list[x509.GeneralName],
    ) -> Issued:
        key = _new_key()
        public = key.public_key()
        now = dt.datetime.now(dt.UTC)
        organisation = self.cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        org = str(organisation[0].value) if organisation else "doorgate"
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name, org))
            .issuer_name(self.cert.subject)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _VALIDITY_SLACK)
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=True,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        return Issued(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))

    def issue_server(self, hosts: Iterable[str], *, days: int = 825) -> Issued:
        """A broker (TLS server) certificate valid for the given host names and addresses.

        Args:
            hosts: DNS names and IP addresses clients use to reach the broker; the first one
                is also the common name.
            days: validity in days.

        Returns:
            The broker's certificate and key.

        Raises:
            ValueError: no host was given.
        """
        names = list(hosts)
        if not names:
            raise ValueError("a broker certificate needs at least one host name or address")
        san: list[x509.GeneralName] = []
        for host in names:
            try:
                san.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                san.append(x509.DNSName(host))
        return self._issue(names[0], ExtendedKeyUsageOID.SERVER_AUTH, days, san)

    def issue_client(self, common_name: str, *, days: int = 825) -> Issued:
        """A client certificate; Mosquitto maps its common name to the MQTT user name.

        Args:
            common_name: :func:`gateway_identity` for a gateway, :data:`STATION_IDENTITY` for
                the station.
            days: validity in days.

        Returns:
            The client's certificate and key.

        Raises:
            ValueError: the name contains ``+`` or ``#``, which Mosquitto refuses in ACL
                patterns and which would be wildcards once substituted.
        """
        if not common_name or any(c in common_name for c in "+#\x00"):
            raise ValueError(f"unsafe certificate common name {common_name!r}")
        return self._issue(common_name, ExtendedKeyUsageOID.CLIENT_AUTH, days, [])

    def issue_gateway(self, site: str, gateway: str, *, days: int = 825) -> Issued:
        """The client certificate of one gateway, CN ``<site>/<gateway>``.

        Args:
            site: the site code.
            gateway: the gateway name.
            days: validity in days.

        Returns:
            The gateway's certificate and key.
        """
        return self.issue_client(gateway_identity(site, gateway), days=days)


def common_name(cert_pem: bytes) -> str:
    """The subject common name of a PEM certificate (what Mosquitto uses as user name).

    Args:
        cert_pem: the certificate.

    Returns:
        The common name, or an empty string when the subject has none.
    """
    cert = x509.load_pem_x509_certificate(cert_pem)
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


@dataclass(frozen=True, slots=True)
class Bundle:
    """Where :func:`write_bundle` put each party's files.

    Every party's folder holds ``ca.crt`` plus its own certificate and key, ready to be copied
    as a whole (a gateway's folder is what ``LoadCredential=`` points at: the gateway config's
    ``broker.ca_file``/``cert_file``/``key_file`` default to ``ca.crt``/``gateway.crt``/
    ``gateway.key``).

    Attributes:
        root: the output folder.
        ca_cert: the CA certificate (``ca/ca.crt``).
        ca_key: the CA key (``ca/ca.key``): keep it offline.
        broker: folder with ``ca.crt``, ``broker.crt``, ``broker.key``.
        station: folder with ``ca.crt``, ``station.crt``, ``station.key``.
        homeassistant: folder with ``ca.crt``, ``homeassistant.crt``, ``homeassistant.key``.
        gateways: ``(site, gateway)`` -> folder with ``ca.crt``, ``gateway.crt``, ``gateway.key``.
    """

    root: Path
    ca_cert: Path
    ca_key: Path
    broker: Path
    station: Path
    homeassistant: Path
    gateways: dict[tuple[str, str], Path]


def gateway_folder(root: Path, site: str, gateway: str) -> Path:
    """The folder of one gateway's files in a bundle: ``gateways/<site>.<gateway>/``.

    Args:
        root: the bundle's output folder.
        site: the site code.
        gateway: the gateway name.

    Returns:
        The folder (not created).
    """
    gateway_identity(site, gateway)  # validates both names
    return root / "gateways" / f"{site}.{gateway}"


def write_bundle(
    root: Path,
    gateways: Iterable[tuple[str, str]],
    *,
    broker_hosts: Iterable[str] = ("localhost", "127.0.0.1"),
    days: int = 825,
    force: bool = False,
) -> Bundle:
    """Create (or complete) the certificates of a deployment under ``root``.

    An existing CA under ``root/ca/`` is reused, so running again with one more gateway issues
    just that gateway's certificate; existing leaf certificates are kept unless ``force``.

    Args:
        root: output folder.
        gateways: ``(site, gateway)`` pairs to issue client certificates for.
        broker_hosts: names and addresses clients use to reach the broker.
        days: validity of the leaf certificates in days.
        force: re-issue leaf certificates that already exist.

    Returns:
        Where everything is.

    Raises:
        ValueError: a site or gateway name is not a single safe topic segment (nothing is
            written then).
    """
    pairs = list(gateways)
    for site, gateway in pairs:
        gateway_identity(site, gateway)  # refuse bad names before writing anything
    ca_cert, ca_key = root / "ca" / "ca.crt", root / "ca" / "ca.key"
    if ca_cert.exists() and ca_key.exists():
        ca = CertificateAuthority.load(ca_cert, ca_key)
    else:
        ca = CertificateAuthority.create()
        write_file(ca_cert, ca.cert_pem, private=False)
        write_file(ca_key, ca.key_pem, private=True)

    def party(folder: Path, stem: str, issue: Callable[[], Issued]) -> Path:
        cert, key = folder / f"{stem}.crt", folder / f"{stem}.key"
        write_file(folder / "ca.crt", ca.cert_pem, private=False)
        if force or not (cert.exists() and key.exists()):
            issue().write(cert, key)
        return folder

    hosts = list(broker_hosts)
    broker = party(root / "broker", "broker", lambda: ca.issue_server(hosts, days=days))
    station = party(
        root / "station", "station", lambda: ca.issue_client(STATION_IDENTITY, days=days)
    )
    homeassistant = party(
        root / "homeassistant",
        "homeassistant",
        lambda: ca.issue_client(HOMEASSISTANT_IDENTITY, days=days),
    )
    issued: dict[tuple[str, str], Path] = {}
    for site, gateway in pairs:
        folder = gateway_folder(root, site, gateway)
        issued[(site, gateway)] = party(
            folder, "gateway", functools.partial(ca.issue_gateway, site, gateway, days=days)
        )
    return Bundle(root, ca_cert, ca_key, broker, station, homeassistant, issued)
