"""``python -m gateway`` runs the `doorgate` command."""

from gateway.cli import main

main()
