"""Built-in engines, registered under the ``hookgate.engines`` entry point group."""
