"""Flows: a target made of steps, each a job on an engine (docs/flows.md, as it grows).

Owns: ``definition`` (flow files → a checked ``Flow``: steps, ``needs``, expressions, bounds).
The flow runner, which advances a run when one of its steps ends, comes next. May import: jobs,
outbound, auth, rules, http, store and the top-level modules.
"""
