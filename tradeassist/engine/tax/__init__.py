"""UK tax, computed from the book: share matching for capital gains, tax years, allowances.

Pure, like the rest of the engine: plain values in, plain values out.
"""
