"""Serving the console with uvicorn: ``kktmon console --config F`` until SIGTERM/SIGINT.

It binds ``[console] listen`` (127.0.0.1:8080 by default: put the TLS proxy of
``deploy/nginx/`` in front to reach it from the LAN). uvicorn trusts ``X-Forwarded-For``
and ``X-Forwarded-Proto`` only from the addresses in ``FORWARDED_ALLOW_IPS`` (default
127.0.0.1, the proxy on the same host), so the login limit counts real client addresses
and ``--cookie-secure auto`` sees TLS. The store need not be up to start: pages answer
503 until it is.
"""

from __future__ import annotations

import gc
import logging
import signal
import sys
from types import FrameType

import uvicorn

from kktmon.console.app import create_app
from kktmon.console.state import CookieSecure
from kktmon.ticketing.config import TicketingConfig, load_config

log = logging.getLogger(__name__)


def url_of(config: TicketingConfig) -> str:
    """The address the console serves, as a URL (IPv6 hosts bracketed)."""
    host, port = config.console.host, config.console.port
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def make_server(config: TicketingConfig, cookie_secure: CookieSecure = "auto") -> uvicorn.Server:
    app = create_app(config, cookie_secure=cookie_secure)
    settings = uvicorn.Config(
        app,
        host=config.console.host,
        port=config.console.port,
        log_level="warning",
        access_log=False,
        server_header=False,
        proxy_headers=True,
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    return uvicorn.Server(settings)


def serve(config_path: str, cookie_secure: CookieSecure = "auto") -> int:
    """Serve until SIGTERM or SIGINT; 0 after a clean stop, 1 when the port is taken."""
    config = load_config(config_path, service_secrets=False)
    server = make_server(config, cookie_secure)
    # What lives as long as the process (modules, the app, the config's clients) leaves
    # the garbage collector's sight: its full passes then walk only what requests made.
    # At 100,000 registers they otherwise took a register page's p95 from 30 to 70 ms.
    gc.collect()
    gc.freeze()
    users = len(config.console.users)
    if not users:
        log.warning("console: no [[console.users]] in %s: nobody can log in", config_path)
    print(f"kktmon console: serving {url_of(config)} ({users} user(s))", flush=True)

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt  # uvicorn re-raises the signal it caught after shutting down

    signal.signal(signal.SIGTERM, stop)
    try:
        server.run()
    except KeyboardInterrupt:
        return 0
    if not server.started:
        print(f"kktmon console: could not listen on {config.console.listen}", file=sys.stderr)
        return 1
    return 0
