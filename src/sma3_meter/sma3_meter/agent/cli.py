"""``sma3-meter-agent``: run the self-configuring meter agent until SIGTERM or SIGINT.

Example::

    sma3-meter-agent --id MS1 --catalog http://catalog:8080 --token-file /etc/sma3/MS1.token \\
        --cache /var/lib/sma3 --ip 10.0.0.21 --mqtt-password-file /etc/sma3/MS1.mqtt

Options
-------
--id ID                  Device id (as in the catalog and the network's meters table).
--catalog URL            Catalog base URL (``http://host:port`` or ``.../api/v1``).
--token T | --token-file F   Bearer token of this meter (the file's first line).
--cache DIR              Folder of the configuration cache (created if needed).
--catalog-ca FILE        CA bundle (PEM) of an https catalog (default: the system trust store).
--ip ADDR                IP address announced in the registration.
--rest-base-url URL      The meter's own REST API, announced in the registration.
--mqtt-username U        Broker user (default: the device id, as in the example ACL).
--mqtt-password-file F   Broker password for every credentials reference.
--mqtt-credentials F     YAML ``{credentials_ref: {username: U, password: P}}`` (per reference).
--ca REF=PATH            CA bundle for a broker's ``ca_ref`` (repeatable).
--refresh S, --retry S, --peers-refresh S   Re-fetch period, retry period while the catalog is
                         down, peers look-up period (s).
--log-level LEVEL        debug, info, warning, error (default info).

Exit status 0 after a clean stop, 2 with a one-line reason on bad options.
"""

from __future__ import annotations

import argparse
import logging
import re
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

import yaml

from sma3_catalog.models import DEVICE_ID_PATTERN

from .catalog_client import api_base
from .core import AgentSettings, MeterAgent
from .mqtt import MqttCredentials, MqttLinks

__all__ = ["build_parser", "main"]

log = logging.getLogger("sma3_meter.agent")


class OptionError(ValueError):
    """A command-line option is unusable; the message names it."""


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser."""
    p = argparse.ArgumentParser(prog="sma3-meter-agent", description="sma3 self-configuring meter agent.")
    p.add_argument("--id", required=True, help="Device id.")
    p.add_argument("--catalog", required=True, help="Catalog base URL.")
    tok = p.add_mutually_exclusive_group(required=True)
    tok.add_argument("--token", help="Bearer token of this meter.")
    tok.add_argument("--token-file", type=Path, help="File holding the bearer token.")
    p.add_argument("--cache", type=Path, required=True, help="Configuration cache folder.")
    p.add_argument("--catalog-ca", type=Path, help="CA bundle (PEM) of an https catalog.")
    p.add_argument("--ip", help="IP address announced in the registration.")
    p.add_argument("--rest-base-url", help="The meter's own REST base URL.")
    p.add_argument("--mqtt-username", help="Broker user (default: the device id).")
    p.add_argument("--mqtt-password-file", type=Path, help="Broker password file.")
    p.add_argument("--mqtt-credentials", type=Path, help="YAML credentials by credentials_ref.")
    p.add_argument("--ca", action="append", default=[], metavar="REF=PATH", help="CA bundle of a ca_ref.")
    p.add_argument("--refresh", type=float, default=30.0, help="Configuration re-fetch period (s).")
    p.add_argument("--retry", type=float, default=2.0, help="Retry period while the catalog is down (s).")
    p.add_argument("--peers-refresh", type=float, default=60.0, help="Peers look-up period (s).")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return p


def _read_secret(path: Path, what: str) -> str:
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise OptionError(f"{what}: {exc}") from None
    if not lines or not lines[0].strip():
        raise OptionError(f"{what}: {path} is empty")
    return lines[0].strip()


def _credentials(args: argparse.Namespace) -> dict[str, MqttCredentials]:
    creds: dict[str, MqttCredentials] = {}
    if args.mqtt_password_file is not None or args.mqtt_username is not None:
        password = (
            _read_secret(args.mqtt_password_file, "--mqtt-password-file")
            if args.mqtt_password_file is not None
            else None
        )
        creds["*"] = MqttCredentials(args.mqtt_username or args.id, password)
    if args.mqtt_credentials is not None:
        try:
            data = yaml.safe_load(args.mqtt_credentials.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise OptionError(f"--mqtt-credentials: {exc}") from None
        if not isinstance(data, dict):
            raise OptionError(
                f"--mqtt-credentials: {args.mqtt_credentials} must map references to credentials"
            )
        for ref, entry in data.items():
            if not isinstance(entry, dict) or not isinstance(entry.get("username"), str):
                raise OptionError(f"--mqtt-credentials: entry {ref!r} needs a 'username' (and 'password')")
            password = entry.get("password")
            if password is not None and not isinstance(password, str):
                raise OptionError(f"--mqtt-credentials: password of {ref!r} must be text")
            creds[str(ref)] = MqttCredentials(entry["username"], password)
    return creds


def settings_from_args(args: argparse.Namespace) -> tuple[AgentSettings, MqttLinks]:
    """Agent settings and MQTT links from parsed options.

    Raises
    ------
    OptionError
        Unusable option values (the message names the option).
    """
    if not re.match(DEVICE_ID_PATTERN, args.id):
        raise OptionError(f"--id {args.id!r} is not a valid device id (letters, digits, _ . : -)")
    try:
        api_base(args.catalog)
    except ValueError as exc:
        raise OptionError(f"--catalog: {exc}") from None
    token = args.token if args.token is not None else _read_secret(args.token_file, "--token-file")
    if args.catalog_ca is not None and not args.catalog_ca.is_file():
        raise OptionError(f"--catalog-ca: {args.catalog_ca} is not a file")
    ca_files: dict[str, str] = {}
    for item in args.ca:
        ref, sep, path = item.partition("=")
        if not sep or not ref or not path:
            raise OptionError(f"--ca expects REF=PATH, got {item!r}")
        if not Path(path).is_file():
            raise OptionError(f"--ca {ref}: {path} is not a file")
        ca_files[ref] = path
    try:
        settings = AgentSettings(
            device_id=args.id,
            catalog_url=args.catalog,
            token=token,
            cache_dir=args.cache,
            ip=args.ip,
            rest_base_url=args.rest_base_url,
            refresh_s=args.refresh,
            retry_s=args.retry,
            peers_refresh_s=args.peers_refresh,
            catalog_ca=str(args.catalog_ca) if args.catalog_ca is not None else None,
        )
    except ValueError as exc:
        raise OptionError(str(exc)) from None
    return settings, MqttLinks(args.id, _credentials(args), ca_files)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``sma3-meter-agent``; returns the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings, links = settings_from_args(args)
        agent = MeterAgent(settings, links)
    except (OptionError, ValueError) as exc:
        print(f"sma3-meter-agent: {exc}", file=sys.stderr)
        return 2
    links.bind(agent.on_management_message, agent.on_data_message)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info(
        "meter agent %s starting (catalog %s, cache %s)",
        settings.device_id,
        agent.client.base,
        settings.cache_dir,
    )
    agent.run(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
