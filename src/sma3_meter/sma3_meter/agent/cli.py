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
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

import yaml

from sma3_catalog.models import DEVICE_ID_PATTERN

from .catalog_client import api_base
from .core import AgentSettings, MeterAgent
from .mqtt import MqttCredentials, MqttLinks

__all__ = ["OptionError", "build_agent_settings", "build_parser", "main", "settings_from_args", "start_agent"]

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


def _cli_name(key: str) -> str:
    return "--" + key.replace("_", "-")


def _read_secret(path: Path, what: str) -> str:
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise OptionError(f"{what}: {exc}") from None
    if not lines or not lines[0].strip():
        raise OptionError(f"{what}: {path} is empty")
    return lines[0].strip()


def _credentials(
    device_id: str,
    mqtt_username: str | None,
    mqtt_password_file: Path | None,
    mqtt_credentials: Path | None,
    name: Callable[[str], str],
) -> dict[str, MqttCredentials]:
    creds: dict[str, MqttCredentials] = {}
    if mqtt_password_file is not None or mqtt_username is not None:
        password = (
            _read_secret(mqtt_password_file, name("mqtt_password_file"))
            if mqtt_password_file is not None
            else None
        )
        creds["*"] = MqttCredentials(mqtt_username or device_id, password)
    if mqtt_credentials is not None:
        what = name("mqtt_credentials")
        try:
            data = yaml.safe_load(mqtt_credentials.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise OptionError(f"{what}: {exc}") from None
        if not isinstance(data, dict):
            raise OptionError(f"{what}: {mqtt_credentials} must map references to credentials")
        for ref, entry in data.items():
            if not isinstance(entry, dict) or not isinstance(entry.get("username"), str):
                raise OptionError(f"{what}: entry {ref!r} needs a 'username' (and 'password')")
            password = entry.get("password")
            if password is not None and not isinstance(password, str):
                raise OptionError(f"{what}: password of {ref!r} must be text")
            creds[str(ref)] = MqttCredentials(entry["username"], password)
    return creds


def build_agent_settings(
    *,
    device_id: str,
    catalog: str,
    cache: Path,
    token: str | None = None,
    token_file: Path | None = None,
    catalog_ca: Path | None = None,
    ip: str | None = None,
    rest_base_url: str | None = None,
    mqtt_username: str | None = None,
    mqtt_password_file: Path | None = None,
    mqtt_credentials: Path | None = None,
    ca: Sequence[str] = (),
    refresh: float = 30.0,
    retry: float = 2.0,
    peers_refresh: float = 60.0,
    name: Callable[[str], str] = _cli_name,
) -> tuple[AgentSettings, MqttLinks]:
    """Validated agent settings and MQTT links from the meter's start-up options.

    Shared by ``sma3-meter-agent`` and the ROS node (:mod:`sma3_meter.nodes.agent`).

    Parameters
    ----------
    device_id, catalog, cache
        Device id, catalog base URL, configuration cache folder.
    token, token_file
        Bearer token, or the file holding it (first line); exactly one.
    catalog_ca
        CA bundle (PEM) of an https catalog.
    ip, rest_base_url
        End-points announced in the registration.
    mqtt_username, mqtt_password_file, mqtt_credentials
        Broker credentials (see the module notes).
    ca
        ``REF=PATH`` CA bundles of the brokers' ``ca_ref``.
    refresh, retry, peers_refresh
        Re-fetch period, retry period while the catalog is down, peers look-up period (s).
    name
        Display name of an option in error messages (default ``--option-name``).

    Raises
    ------
    OptionError
        Unusable option values (the message names the option).
    """
    if not re.match(DEVICE_ID_PATTERN, device_id):
        raise OptionError(f"{name('id')} {device_id!r} is not a valid device id (letters, digits, _ . : -)")
    try:
        api_base(catalog)
    except ValueError as exc:
        raise OptionError(f"{name('catalog')}: {exc}") from None
    if (token is None) == (token_file is None):
        raise OptionError(f"give exactly one of {name('token')} and {name('token_file')}")
    secret = token if token is not None else _read_secret(token_file, name("token_file"))  # type: ignore[arg-type]
    if catalog_ca is not None and not catalog_ca.is_file():
        raise OptionError(f"{name('catalog_ca')}: {catalog_ca} is not a file")
    ca_files: dict[str, str] = {}
    for item in ca:
        ref, sep, path = item.partition("=")
        if not sep or not ref or not path:
            raise OptionError(f"{name('ca')} expects REF=PATH, got {item!r}")
        if not Path(path).is_file():
            raise OptionError(f"{name('ca')} {ref}: {path} is not a file")
        ca_files[ref] = path
    try:
        settings = AgentSettings(
            device_id=device_id,
            catalog_url=catalog,
            token=secret,
            cache_dir=cache,
            ip=ip,
            rest_base_url=rest_base_url,
            refresh_s=refresh,
            retry_s=retry,
            peers_refresh_s=peers_refresh,
            catalog_ca=str(catalog_ca) if catalog_ca is not None else None,
        )
    except ValueError as exc:
        raise OptionError(str(exc)) from None
    creds = _credentials(device_id, mqtt_username, mqtt_password_file, mqtt_credentials, name)
    return settings, MqttLinks(device_id, creds, ca_files)


def start_agent(settings: AgentSettings, links: MqttLinks) -> MeterAgent:
    """The agent of ``settings`` with ``links`` bound to it (run it with :meth:`MeterAgent.run`)."""
    agent = MeterAgent(settings, links)
    links.bind(agent.on_management_message, agent.on_data_message)
    return agent


def settings_from_args(args: argparse.Namespace) -> tuple[AgentSettings, MqttLinks]:
    """Agent settings and MQTT links from parsed options (:func:`build_agent_settings`).

    Raises
    ------
    OptionError
        Unusable option values (the message names the option).
    """
    return build_agent_settings(
        device_id=args.id,
        catalog=args.catalog,
        cache=args.cache,
        token=args.token,
        token_file=args.token_file,
        catalog_ca=args.catalog_ca,
        ip=args.ip,
        rest_base_url=args.rest_base_url,
        mqtt_username=args.mqtt_username,
        mqtt_password_file=args.mqtt_password_file,
        mqtt_credentials=args.mqtt_credentials,
        ca=args.ca,
        refresh=args.refresh,
        retry=args.retry,
        peers_refresh=args.peers_refresh,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``sma3-meter-agent``; returns the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings, links = settings_from_args(args)
        agent = start_agent(settings, links)
    except (OptionError, ValueError) as exc:
        print(f"sma3-meter-agent: {exc}", file=sys.stderr)
        return 2
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
