"""Everything a plugin needs, in one module: import from here and nowhere else in ``gateway``.

An engine runs targets (entry point group ``hookgate.engines``: a factory taking its
``EngineConfig``); a notifier turns an ``Event`` into one ``OutboundRequest`` (group
``hookgate.notifiers``: a class with a ``format`` name and a pure ``render``). The names below are
the whole contract: hookgate's internal modules may move between releases, this one does not, and
every name leaves it only after a release in which it warns. docs/engines.md and docs/outbound.md
show a plugin of each kind written against it.

Scripts do not import this module: they use ``gateway.client`` (standard library only).
"""

from __future__ import annotations

from gateway.client import JobInfo, current_job
from gateway.config import EngineConfig, PluginOptions, Table, WebhookConfig
from gateway.config.plugin_options import NoOptions, declare_options
from gateway.config.values import Duration, Names, Positive, RelativePath, Size, Url
from gateway.durations import parse_duration, parse_size
from gateway.errors import ConfigError, GatewayError
from gateway.jobs.engine import (
    STEP_STATUSES,
    Engine,
    EngineContext,
    EngineFactory,
    EngineUnavailable,
    JobContext,
    LiveLogs,
    Outcome,
    Step,
    content_hash,
)
from gateway.models import Job, JobOptions, JobState, ScriptVersion
from gateway.outbound.events import Event, EventType
from gateway.outbound.notify import Notifier, OutboundRequest
from gateway.outbound.transports import Message, Sent, Transport

__all__ = [
    "STEP_STATUSES",
    "ConfigError",
    "Duration",
    "Engine",
    "EngineConfig",
    "EngineContext",
    "EngineFactory",
    "EngineUnavailable",
    "Event",
    "EventType",
    "GatewayError",
    "Job",
    "JobContext",
    "JobInfo",
    "JobOptions",
    "JobState",
    "LiveLogs",
    "Message",
    "Names",
    "NoOptions",
    "Notifier",
    "OutboundRequest",
    "Outcome",
    "PluginOptions",
    "Positive",
    "RelativePath",
    "ScriptVersion",
    "Sent",
    "Size",
    "Step",
    "Table",
    "Transport",
    "Url",
    "WebhookConfig",
    "content_hash",
    "current_job",
    "declare_options",
    "parse_duration",
    "parse_size",
]
