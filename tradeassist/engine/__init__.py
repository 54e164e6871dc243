"""Pure functions: valuation, drift, allocation, rebalance, performance, price checks.

Nothing here reads the clock, the network or the database. Given the same input the same
output comes back, and inputs (frozen dataclasses, DataFrames) come back unchanged.
"""
