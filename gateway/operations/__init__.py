"""Background operations: work over many records (a bulk retry of deliveries) as one record of its
own, with progress any replica reports and a cancel any replica takes.

Owns: ``runner`` (claims operations under a lease and drives them batch by batch; a restart or a
dead replica's operation resumes from its cursor), ``http`` (``POST /api/deliveries/retry``, the
operations API). May import: outbound, auth, http, store, top-level.
"""
