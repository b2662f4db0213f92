"""Rules users write: the expression language (CEL), compiled once per configuration.

Owns: ``expressions`` (compile and evaluate CEL, with its bounds; ``${…}`` templates in flow
files). Route filters and subscription filters will live here too. May import: the top-level
modules only; flows, triggers and outbound use it.
"""
