"""What every HTTP handler shares: the configuration being served, the caller's origin, reading a
body within the limits, JSON answers and the JSON views of our records.

Owns: ``live`` (the swapped-whole configuration and the snapshot a request pins), ``forwarded``
(client address and public origin, trusting X-Forwarded-* only from trusted proxies), ``request``
(body reading, the URLs handed back, the matched route), ``answers`` (``json_response``, views).
May import: the top-level modules (config, errors, models, state) and nothing else of gateway:
it sits below every handler (triggers, callbacks, outbound, web).
"""
