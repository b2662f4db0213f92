"""hookgate: a webhook gateway in front of a job engine.

The public surface is small: ``create_app`` to embed the gateway in an aiohttp program,
``load_config`` to read its configuration, and the error types it answers with. They are imported
lazily, so that a script importing ``gateway.client`` loads nothing but the standard library.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.config import Config, load_config
    from gateway.errors import ConfigError, GatewayError
    from gateway.web.app import create_app

__all__ = ["Config", "ConfigError", "GatewayError", "create_app", "load_config"]
__version__ = "0.1.0"

_LAZY = {
    "create_app": "app",
    "Config": "config",
    "load_config": "config",
    "ConfigError": "errors",
    "GatewayError": "errors",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'gateway' has no attribute {name!r}")
