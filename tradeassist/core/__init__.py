"""The foundation every other package may import, and which imports nothing of ours: errors,
enumerations, exact money and its one format, ISINs, time in UTC and Europe/London, JSON,
configuration, quote units, read-only mappings and secret redaction."""
