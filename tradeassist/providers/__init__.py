"""Market data, FX, broker files, reviewers and notification channels.

Each provider is a small class behind a ``typing.Protocol``, registered by name. Providers
know nothing of the database: they parse and fetch, and return plain values.
"""
