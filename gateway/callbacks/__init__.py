"""Callback endpoints: a running job creates a one-shot URL, someone outside calls it, the job wakes.

Owns: ``endpoints`` (create, receive, await, expire; suspended jobs), ``http`` (the endpoints'
HTTP: create/await for jobs, the public ``/callbacks/{token}``), ``approval`` (the approve/reject page).
May import: triggers (a call's body is shaped like a trigger's), jobs, outbound, auth, http,
store, top-level.
"""
