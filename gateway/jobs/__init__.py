"""Jobs: their lifecycle, the dispatcher that hands them to engines, and the Engine seam.

Owns: ``lifecycle`` (submit, transitions as compare-and-set, wait, cancel), ``dispatcher`` (claims
queued jobs with a lease, runs them on their engine, records what the engine reports), ``engine``
(the Engine Protocol and what an engine is given; plugins see it through ``gateway.plugin``),
``catalog`` (which targets exist, pinned by content hash), ``slots`` (bounded waiting).
May import: outbound (events and subscriptions), auth, http, store, top-level.
"""
