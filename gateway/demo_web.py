"""The demo's two web pages: the landlord portal (in the daemon) and the station dashboard.

Both listen on free loopback ports with demo accounts; the demo prints their addresses and
sign-ins. `--forever` keeps them open to click through.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from rich.console import Console

from gateway.broker import free_port
from rules.i18n import add_messages, t
from station.commands import Commander
from station.store import StationStore
from station.web.app import create_app as create_dashboard
from station.web.store import WebStore
from sync.portal_store import PortalStore
from sync.store import Store

LANDLORD = "landlord"
OFFICER = "officer"
PASSWORD = "doorgate-demo"  # noqa: S105 - printed for the demo's throw-away accounts

add_messages({
    "demo.portal": {"zh": "房东门户", "en": "landlord portal"},
    "demo.dashboard": {"zh": "管理站看板", "en": "station dashboard"},
    "demo.sign_in": {"zh": "登录 {user} / {password}", "en": "sign in as {user} / {password}"},
    "demo.web_forever": {
        "zh": "（加 --forever 可在演示后继续打开网页）",
        "en": "(add --forever to keep the pages open after the script)",
    },
})


@dataclass(frozen=True, slots=True)
class DemoWeb:
    """Where the demo's pages listen."""

    portal_port: int
    dashboard_port: int

    @classmethod
    def pick(cls) -> DemoWeb:
        """Two free loopback ports."""
        return cls(free_port(), free_port())

    def config_section(self) -> str:
        """The ``[portal]`` section that makes the daemon serve the portal."""
        return f'\n[portal]\nlisten = "127.0.0.1:{self.portal_port}"\n'

    async def announce(self, console: Console, forever: bool) -> None:
        """Print the addresses and sign-ins once both pages answer."""
        for port in (self.portal_port, self.dashboard_port):
            await wait_listening(port)
        self.print(console, forever)

    def print(self, console: Console, forever: bool) -> None:
        """The addresses and sign-ins."""
        login = t("demo.sign_in", user=LANDLORD, password=PASSWORD)
        console.print(f"[bold]{t('demo.portal')}[/]: http://127.0.0.1:{self.portal_port}/  {login}")
        login = t("demo.sign_in", user=OFFICER, password=PASSWORD)
        console.print(
            f"[bold]{t('demo.dashboard')}[/]: http://127.0.0.1:{self.dashboard_port}/  {login}"
        )
        if not forever:
            console.print(f"[dim]{t('demo.web_forever')}[/]")


async def wait_listening(port: int, timeout: float = 15.0) -> bool:
    """Whether something accepts connections on loopback `port` within `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return True
    return False


def add_accounts(gateway_store: Store, station_store: StationStore) -> None:
    """The landlord of the demo units, and a station administrator."""
    PortalStore(gateway_store.db).add_user(LANDLORD, "landlord", PASSWORD)
    WebStore(station_store).add_user(OFFICER, "station_admin", PASSWORD)


def dashboard_app(station_store: StationStore, commander: Commander) -> object:
    """The dashboard on the demo's station store (its consumer runs in the demo already)."""
    return create_dashboard(station_store, commander=commander, poll=0.5)
