"""tradeassist: an exact book of record and an audited rebalance assistant for a UK DIY investor."""

__version__ = "0.1.0"
