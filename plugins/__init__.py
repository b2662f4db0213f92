"""Built-in plugins: engines and (later) notifiers, each behind a Protocol of ``gateway``."""
