"""Built-in transports: brokers the outbox delivers to (gateway/outbound/transports.py)."""
