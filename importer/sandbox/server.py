"""Serve the sandbox app with uvicorn on loopback."""

from __future__ import annotations

import logging
import socket

import uvicorn

from importer.sandbox.app import SandboxApp, SandboxConfig
from importer.sandbox.process import LISTENING

__all__ = ["SandboxConfig", "serve"]


class _QuietDrops(logging.Filter):
    """Dropped answers are deliberate; keep their tracebacks out of the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "DroppedAnswer" not in record.getMessage() and not (
            record.exc_info
            and record.exc_info[0]
            and record.exc_info[0].__name__ == "DroppedAnswer"
        )


def _listen(port: int) -> socket.socket:
    """A listening socket made with its protocol named: asyncio turns Nagle's algorithm off
    (TCP_NODELAY) only on connections whose socket says IPPROTO_TCP, and
    `socket.create_server` says 0. With Nagle on, an answer written in two parts (uvicorn
    writes the headers, then the body) waited for the client's delayed ACK: 40 ms a request on
    loopback, as no server in front of the API answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(socket.SOMAXCONN)
    return sock


def serve(config: SandboxConfig) -> None:
    """Serve until killed. The socket is bound and listening before the line with its URL is
    printed, so whoever reads the line can connect at once; with port 0 the system picks a free
    port and the line says which. (A port found free beforehand and passed in could be taken
    by another process between the check and the bind.)"""
    app = SandboxApp(config)
    logging.getLogger("uvicorn.error").addFilter(_QuietDrops())
    listening = _listen(config.port)
    port = listening.getsockname()[1]
    print(f"{LISTENING}http://127.0.0.1:{port}", flush=True)
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    )
    server.run(sockets=[listening])
