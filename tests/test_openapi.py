"""The API description: kept in docs/openapi.json, and describing every route the gateway has."""

from __future__ import annotations

from pathlib import Path

import orjson

from gateway.config import load_config
from gateway.web.app import create_app
from gateway.web.openapi import describe

REPO = Path(__file__).parent.parent
CONFIG = REPO / "config" / "gateway.toml"


def test_docs_openapi_json_is_the_generated_document() -> None:
    committed = orjson.loads((REPO / "docs" / "openapi.json").read_bytes())
    assert committed == describe(load_config(CONFIG, environ={})), "run: hookgate openapi > docs/openapi.json"


def test_every_route_of_the_router_is_described() -> None:
    config = load_config(CONFIG, environ={})
    document = describe(config)
    described = {(path, method.upper()) for path, item in document["paths"].items() for method in item}
    missing = []
    for route in create_app(config).router.routes():
        if route.method == "HEAD" or route.resource is None:
            continue
        path = route.resource.canonical
        if path == "/ui" or path.startswith("/ui/"):
            continue  # the dashboard's pages, for browsers (docs/dashboard.md): not the API
        methods = ["GET", "POST", "PUT", "PATCH", "DELETE"] if route.method == "*" else [route.method]
        missing += [(path, m) for m in methods if (path, m) not in described]
    assert missing == []
    assert document["openapi"] == "3.1.0" and "/hooks/hello" in document["paths"]
