"""The ``hookgate`` command, one module per command group.

Owns: ``main`` (the parser and error reporting), ``serve`` (serve and reload), ``configs``
(check-config, openapi), ``jobs``, ``deliveries``, ``tokens``, ``store`` (store copy).
May import: everything; nothing imports it but ``gateway.__main__``.
"""
