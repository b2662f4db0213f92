"""Inbound triggers: admit → read → verify → shape → submit → answer.

Owns: ``handlers`` (the trigger endpoints: custom routes, /api/run…, the Windmill aliases),
``policy`` (what a route or generic endpoint allows), ``admission`` (token, rate limits, signature,
idempotency), ``payload`` and ``forms`` (request → job arguments, pure), ``cloudevents`` (the
envelope, around the SDK), ``sealing`` (redacted values), ``params`` (Windmill's job parameters),
``results`` (a job's result → the sync answer).
May import: jobs, outbound (the SSRF guard for callback URLs), auth, http, store, top-level.
"""
