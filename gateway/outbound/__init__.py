"""Everything that leaves: events, the Notifier seam, the durable outbox, the SSRF guard.

Owns: ``events`` (the Event model), ``notify`` (the Notifier Protocol, loading notifiers, which
subscriptions an event goes to), ``outbox`` (deliveries: claim, sign, send, settle, back off),
``ssrf`` (refusing private targets, at connect time), ``http`` (the deliveries API).
May import: auth (signing keys and signatures), http, store, top-level.
"""
