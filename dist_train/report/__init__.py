"""What a person looks at after (or during) a run: ``curves.png`` from ``metrics.jsonl``
(``giantgcn-plot``, ``giantgcn-train --plot``, and the end of every run)."""
