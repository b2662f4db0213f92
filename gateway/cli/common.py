"""What every command group shares: the default configuration file, and a store opened for one command."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from gateway.config import Config, load_config
from gateway.store import Store, create_store

__all__ = ["DEFAULT_CONFIG", "open_config", "with_store"]

DEFAULT_CONFIG = "config/gateway.toml"
T = TypeVar("T")


def open_config(path: str) -> Config:
    return load_config(Path(path))


async def with_store(config: Config, action: Callable[[Store], Awaitable[T]]) -> T:
    """Open the configured store beside a running gateway (never exclusively), act, close it."""
    store = create_store(config.store.url, exclusive=False, schema=config.store.schema)
    await store.open()
    try:
        return await action(store)
    finally:
        await store.close()
