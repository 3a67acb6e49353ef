#!/usr/bin/env python3
"""Generate the certificates of a doorgate deployment: a CA, the broker, the station, HA, gateways.

Needs only Python 3.11+ and ``cryptography`` (run it from a checkout; doorgate need not be
installed)::

    python3 deploy/make-certs.py ./pki --broker-host mqtt.example.org --broker-host 10.0.0.5 \\
        --gateway futian-03/building-a --gateway futian-03/building-b

Layout (an existing CA in ``./pki/ca/`` is reused, so adding a gateway later issues only its
certificate; ``--force`` re-issues existing leaf certificates)::

    pki/ca/ca.crt, ca.key                       CA (keep ca.key offline)
    pki/broker/ca.crt, broker.crt, broker.key   -> /etc/mosquitto/certs/
    pki/station/ca.crt, station.crt, station.key            CN "station"
    pki/homeassistant/ca.crt, homeassistant.crt, .key       CN "homeassistant"
    pki/gateways/<site>.<gateway>/ca.crt, gateway.crt, gateway.key   CN "<site>/<gateway>"

A gateway's folder is its systemd credentials: ``LoadCredential=ca.crt:…`` etc., matching the
gateway config's ``broker.ca_file = "ca.crt"``, ``cert_file = "gateway.crt"``,
``key_file = "gateway.key"``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sync.pki import common_name, write_bundle


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, write the bundle, list what it holds.

    Args:
        argv: arguments (``sys.argv[1:]`` when None).

    Returns:
        The exit status.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("out", type=Path, help="output folder")
    parser.add_argument(
        "--gateway",
        action="append",
        default=[],
        metavar="SITE/GATEWAY",
        help="issue a gateway certificate (repeatable)",
    )
    parser.add_argument(
        "--broker-host",
        action="append",
        default=[],
        metavar="NAME",
        help="host name or IP address in the broker certificate (repeatable; "
        "default localhost and 127.0.0.1)",
    )
    parser.add_argument("--days", type=int, default=825, help="leaf certificate validity")
    parser.add_argument("--force", action="store_true", help="re-issue existing certificates")
    args = parser.parse_args(argv)
    pairs = []
    for spec in args.gateway:
        site, sep, gateway = spec.partition("/")
        if not sep:
            parser.error(f"--gateway must be SITE/GATEWAY, got {spec!r}")
        pairs.append((site, gateway))
    try:
        bundle = write_bundle(
            args.out,
            pairs,
            broker_hosts=args.broker_host or ("localhost", "127.0.0.1"),
            days=args.days,
            force=args.force,
        )
    except ValueError as err:
        parser.error(str(err))
    folders = [bundle.broker, bundle.station, bundle.homeassistant, *bundle.gateways.values()]
    for folder in folders:
        for cert in sorted(folder.glob("*.crt")):
            if cert.name != "ca.crt":
                sys.stdout.write(f"{cert}  CN={common_name(cert.read_bytes())}\n")
    sys.stdout.write(f"CA: {bundle.ca_cert} (keep {bundle.ca_key} offline)\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
