"""Serve the sandbox app with uvicorn on loopback."""

from __future__ import annotations

import logging

import uvicorn

from importer.sandbox.app import SandboxApp, SandboxConfig

__all__ = ["SandboxConfig", "serve"]


class _QuietDrops(logging.Filter):
    """Dropped answers are deliberate; keep their tracebacks out of the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "DroppedAnswer" not in record.getMessage() and not (
            record.exc_info
            and record.exc_info[0]
            and record.exc_info[0].__name__ == "DroppedAnswer"
        )


def serve(config: SandboxConfig) -> None:
    app = SandboxApp(config)
    logging.getLogger("uvicorn.error").addFilter(_QuietDrops())
    print(f"sandbox listening on http://127.0.0.1:{config.port}", flush=True)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=config.port,
        log_level="warning",
        access_log=False,
        lifespan="off",
    )
