"""The configuration: gateway.toml validated by its file models, turned into frozen dataclasses.

Owns: ``file`` (the file's pydantic models: validation, defaults, the JSON Schema), ``models``
(the runtime ``Config`` the gateway reads), ``loading`` (``${ENV}``, validation, the checks that
need several values), ``problems`` (dotted paths and nearest-key suggestions), ``values``
(durations, sizes, rates, URLs, relative paths), ``plugin_options`` (what plugins declare),
``schema`` (``hookgate config schema``), ``table`` (the older way plugins read options).
May import: the other top-level modules only.
"""

from __future__ import annotations

from gateway.config.loading import load_config, parse_config
from gateway.config.models import (
    AuthConfig,
    BackoffConfig,
    BreakerConfig,
    Config,
    CorsConfig,
    DebounceConfig,
    EngineConfig,
    KeyConfig,
    Mode,
    OperationsConfig,
    OutboundConfig,
    RouteConfig,
    ServerConfig,
    StoreConfig,
    UiConfig,
    UserConfig,
    VerifyConfig,
    WebhookConfig,
)
from gateway.config.plugin_options import PluginOptions
from gateway.config.table import Table
from gateway.config.values import CREDENTIAL_HEADERS, parse_networks

__all__ = [
    "CREDENTIAL_HEADERS",
    "AuthConfig",
    "BackoffConfig",
    "BreakerConfig",
    "Config",
    "CorsConfig",
    "DebounceConfig",
    "EngineConfig",
    "KeyConfig",
    "Mode",
    "OperationsConfig",
    "OutboundConfig",
    "PluginOptions",
    "RouteConfig",
    "ServerConfig",
    "StoreConfig",
    "Table",
    "UiConfig",
    "UserConfig",
    "VerifyConfig",
    "WebhookConfig",
    "load_config",
    "parse_config",
    "parse_networks",
]
