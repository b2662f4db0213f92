"""Built-in notifier formats, registered under the ``hookgate.notifiers`` entry point group."""
