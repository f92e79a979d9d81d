"""Models: GCN / SAGE, the CSR aggregation kernels they run on, and layer-wise full-neighbourhood inference."""
