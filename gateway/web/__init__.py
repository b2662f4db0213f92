"""The application: wiring, the route table, reload, middleware, access log, metrics, OpenAPI, the
jobs API.

Owns: ``app`` (``create_app``: every AppKey filled, every lifecycle in ``cleanup_ctx``),
``routing`` (built-in routes, then the live custom routes), ``reload`` (re-read, check, swap),
``middlewares``, ``accesslog``, ``logsafe`` (secrets out of every log line), ``metrics``,
``openapi``, ``api`` and ``windmill_api`` (jobs and health endpoints, Windmill's job endpoints).
May import: every other package except cli; only cli imports it.
"""
