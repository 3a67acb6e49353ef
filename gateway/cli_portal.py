"""`doorgate portal …`: serve the landlord portal and manage its accounts.

`gateway.cli` registers `portal_app`; this module imports `gateway.cli` lazily (inside commands)
so the two can import each other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

import gateway.portal.i18n  # noqa: F401 - registers the portal's messages
from rules.i18n import t
from sync.webauth import ROLES

portal_app = typer.Typer(help="The landlord portal (web, building LAN).", no_args_is_help=True)
user_app = typer.Typer(help="Portal accounts.", no_args_is_help=True)
portal_app.add_typer(user_app, name="user")
console = Console()

ConfigOption = Annotated[
    Path,
    typer.Option("--config", "-c", envvar="DOORGATE_CONFIG", help="Gateway config file (TOML)."),
]
DEFAULT_CONFIG = Path("/etc/doorgate/doorgate.toml")


@portal_app.command("serve")
def serve(
    config: ConfigOption = DEFAULT_CONFIG,
    host: Annotated[str, typer.Option(help="Address to listen on (the building LAN).")] = "0.0.0.0",  # noqa: S104
    port: Annotated[int, typer.Option(help="TCP port.")] = 8080,
) -> None:
    """Serve the portal (uvicorn) on the gateway's store."""
    import uvicorn

    from gateway.cli import open_store, user_errors
    from gateway.config import read_secret
    from gateway.portal.app import create_app, portal_secret

    with user_errors():
        settings, store = open_store(config)
        key = read_secret(settings.secrets.hash_key_file, config)
    app = create_app(settings, store, secret=portal_secret(key))
    console.print(t("portal.serving", url=f"http://{host}:{port}/"))
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        store.close()


@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="Account name (a landlord's matches units.landlord).")],
    role: Annotated[str, typer.Option(help=f"One of {', '.join(ROLES)}.")] = "landlord",
    config: ConfigOption = DEFAULT_CONFIG,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Create an account (or reset its password and role); the password is asked for."""
    from gateway.cli import user_errors, with_store
    from sync.portal_store import PortalStore
    from sync.webui import read_password

    password = read_password(password_stdin, t("portal.password"))
    with user_errors():
        with_store(config, lambda store, _: PortalStore(store.db).add_user(name, role, password))
    console.print(t("portal.user_added", name=name, role=role))
