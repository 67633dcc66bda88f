"""``sma3-catalog``: run the Device Catalog (REST + MQTT).

Example::

    sma3-catalog --db sqlite:///catalog.db --port 8080 --tokens tokens.yaml \\
        --mqtt-host 127.0.0.1 --mqtt-port 1883 --mqtt-username sma3-catalog \\
        --mqtt-password-file catalog.pw --config-dir /etc/sma3/catalog

Options
-------
--db URL               SQLAlchemy URL: ``sqlite:///path.db`` (default ``sqlite:///sma3-catalog.db``)
                       or ``postgresql+psycopg://user:pw@host:port/db``.
--host, --port         HTTP bind address (default 127.0.0.1:8080).
--ssl-certfile/-keyfile  Serve HTTPS with these PEM files.
--tokens FILE          Bearer tokens (YAML, see sma3_catalog.auth); default: config-dir/tokens.yaml.
--config-dir DIR       Optional brokers.yaml, networks.yaml, algorithms.yaml, tokens.yaml.
--network NAME=SOURCE  Serve a network (shipped name, folder or .xlsx); repeatable; replaces the
                       defaults (mini, turin22) and networks.yaml. Loaded at start-up.
--no-networks          Serve no network descriptions (configurations then carry none).
--mqtt-host HOST       Management broker; without it the catalog runs REST-only.
--mqtt-port PORT       Default 1883 (8883 usual with TLS).
--mqtt-username USER   Catalog's broker user; password from --mqtt-password-file or the
                       SMA3_CATALOG_MQTT_PASSWORD environment variable.
--mqtt-tls, --mqtt-ca, --mqtt-certfile, --mqtt-keyfile   TLS to the broker.
--topic-prefix P       Management topics prefix (default sma3/mgmt).
--default-ttl S        TTL (s) of registrations without one (default 60).
--offline-grace S      Seconds a device stays listed (alive=false) after going offline (default 5).
--log-level LEVEL      debug, info, warning (default info).

Exit status 2 with a one-line reason on bad options or configuration.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import uvicorn

from sma3_catalog.api import create_app
from sma3_catalog.auth import TokenFileError, TokenTable
from sma3_catalog.configuration import ConfigError
from sma3_catalog.mqtt_link import MqttSettings
from sma3_catalog.service import CatalogService, CatalogSettings, load_config_dir


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser (every option documented in ``--help``)."""
    p = argparse.ArgumentParser(prog="sma3-catalog", description="sma3 Device Catalog (REST + MQTT).")
    p.add_argument(
        "--db", default="sqlite:///sma3-catalog.db", help="SQLAlchemy database URL (sqlite or postgresql)."
    )
    p.add_argument("--host", default="127.0.0.1", help="HTTP bind address.")
    p.add_argument("--port", type=int, default=8080, help="HTTP port.")
    p.add_argument("--ssl-certfile", help="PEM certificate: serve HTTPS.")
    p.add_argument("--ssl-keyfile", help="PEM private key for --ssl-certfile.")
    p.add_argument("--tokens", type=Path, help="Bearer tokens file (YAML).")
    p.add_argument(
        "--config-dir", type=Path, help="Folder with brokers/networks/algorithms/tokens YAML files."
    )
    p.add_argument("--network", action="append", default=[], metavar="NAME=SOURCE", help="Serve a network.")
    p.add_argument("--no-networks", action="store_true", help="Serve no network descriptions.")
    p.add_argument("--mqtt-host", help="Management broker host (omit to run without MQTT).")
    p.add_argument("--mqtt-port", type=int, default=1883, help="Management broker port.")
    p.add_argument("--mqtt-username", help="Management broker user of the catalog.")
    p.add_argument("--mqtt-password-file", type=Path, help="File holding that user's password.")
    p.add_argument("--mqtt-tls", action="store_true", help="Use TLS to the management broker.")
    p.add_argument("--mqtt-ca", help="CA bundle (PEM) to verify the broker.")
    p.add_argument("--mqtt-certfile", help="Client certificate (PEM) for the broker.")
    p.add_argument("--mqtt-keyfile", help="Client key (PEM) for the broker.")
    p.add_argument("--topic-prefix", default="sma3/mgmt", help="Management topic prefix.")
    p.add_argument("--default-ttl", type=float, default=60.0, help="Default registration TTL (s).")
    p.add_argument("--offline-grace", type=float, default=5.0, help="Seconds listed after going offline.")
    p.add_argument(
        "--index-poll",
        type=float,
        default=0.1,
        help="Seconds between replays of the event log into the device list index (writes by other "
        "instances on the same database are listed within about this); 0 replays before every list query.",
    )
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return p


def settings_from_args(args: argparse.Namespace) -> CatalogSettings:
    """Turn parsed options into :class:`CatalogSettings`.

    Raises
    ------
    ConfigError, TokenFileError
        For unusable options or files (the message names which).
    """
    mqtt = None
    if args.mqtt_host:
        password = os.environ.get("SMA3_CATALOG_MQTT_PASSWORD")
        if args.mqtt_password_file is not None:
            try:
                password = args.mqtt_password_file.read_text().strip()
            except OSError as exc:
                raise ConfigError(f"--mqtt-password-file: {exc}") from None
        if not 0 < args.mqtt_port < 65536:
            raise ConfigError(f"--mqtt-port must be 1..65535, got {args.mqtt_port}")
        mqtt = MqttSettings(
            host=args.mqtt_host,
            port=args.mqtt_port,
            username=args.mqtt_username,
            password=password,
            tls=args.mqtt_tls,
            ca_file=args.mqtt_ca,
            certfile=args.mqtt_certfile,
            keyfile=args.mqtt_keyfile,
        )
    if args.default_ttl <= 0 or args.offline_grace < 0 or args.index_poll < 0:
        raise ConfigError("--default-ttl must be > 0, --offline-grace and --index-poll >= 0")
    settings = CatalogSettings(
        db_url=args.db,
        mqtt=mqtt,
        topic_prefix=args.topic_prefix,
        default_ttl_s=args.default_ttl,
        offline_grace_s=args.offline_grace,
        index_poll_s=args.index_poll,
    )
    if args.config_dir is not None:
        load_config_dir(settings, args.config_dir)
    if args.network:
        networks = {}
        for item in args.network:
            name, sep, source = item.partition("=")
            if not sep or not name or not source:
                raise ConfigError(f"--network expects NAME=SOURCE, got {item!r}")
            networks[name] = source
        settings.networks = networks
    if args.no_networks:
        if args.network:
            raise ConfigError("--no-networks and --network exclude each other")
        settings.networks = {}
    if args.tokens is not None:
        settings.tokens = TokenTable.load(args.tokens)
    return settings


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``sma3-catalog``; returns the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = settings_from_args(args)
        service = CatalogService(settings)
        for name in service.networks.names():  # fail at start-up, not on the first request
            service.networks.get(name)
    except (ConfigError, TokenFileError, ValueError) as exc:  # NetworkError is a ValueError
        print(f"sma3-catalog: {exc}", file=sys.stderr)
        return 2
    if len(settings.tokens) == 0:
        logging.getLogger("sma3_catalog").warning("no tokens configured: every write will be refused (401)")
    uvicorn.run(
        create_app(service, freeze_gc=True),
        host=args.host,
        port=args.port,
        ssl_certfile=args.ssl_certfile,
        ssl_keyfile=args.ssl_keyfile,
        log_level=args.log_level,
        timeout_graceful_shutdown=3,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
