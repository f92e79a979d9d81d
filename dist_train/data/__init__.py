"""A rank's data: which parts it loads and the merged local graph of those parts."""
