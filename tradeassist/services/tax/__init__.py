"""UK tax from the book: capital gains (share matching per owner), pools, allowances."""
