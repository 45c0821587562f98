"""Entry point of the ``wiregate`` command and ``python -m wiregate``."""

from __future__ import annotations

import sys


def main() -> int:
    """Run the command line (see :func:`wiregate.gateway.cli.main`).

    kio imports hypothesis whenever it is installed (a test environment) only
    to register test strategies the server never uses; that import costs
    about 0.3 s of start-up, so the command hides it for the whole process.
    (``wiregate.kafka_wire`` hides it from kio alone when embedded, and lets
    the application import it as usual.)
    """
    sys.modules.setdefault("hypothesis", None)  # type: ignore[arg-type]
    from wiregate.gateway.cli import main as cli_main

    return cli_main()
