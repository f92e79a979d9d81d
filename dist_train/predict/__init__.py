"""``giantgcn-predict``: every node's class, probabilities and embeddings from a trained run,
computed exactly across ranks (issue 11). ``exact.py`` is the layer-wise inference."""
