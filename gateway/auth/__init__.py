"""Who may call: principals and scopes, tokens and signing keys, third-party signatures, rate limits.

Owns: ``principals`` (the Authenticator: bearer or ``?token=``, route JWTs, revocation),
``tokens`` (the key ring, minting and rotating), ``verify`` (GitHub, Stripe, Slack, Standard
Webhooks… pure sign/verify over bytes), ``ratelimit`` (sliding-log limits, shared on PostgreSQL).
May import: http, store, top-level. The token CLI lives in ``gateway.cli.tokens``.
"""
