"""Deprecated: this module moved to ``gateway.outbound.events``; plugins import from ``gateway.plugin``.

A thin re-export (gateway/moved.py) kept so that plugins written for earlier releases still load.
"""

from gateway.moved import moved_to

__getattr__, __dir__ = moved_to(__name__, "gateway.outbound.events")
