"""giantgcn's offline half: read a graph, partition it with METIS, write on-disk shards.

The trainer needs only the reader: :func:`load_manifest`, :func:`load_partition`
and :func:`verify_dataset` (the format is documented in ``partition/FORMAT.md``).
Importing this package loads numpy and nothing heavy (no pymetis, tqdm or torch).
"""

from partition.errors import DatasetError, InputError
from partition.store.format import Partition, load_manifest, load_partition, verify_dataset

__all__ = ["DatasetError", "InputError", "Partition", "load_manifest", "load_partition",
           "verify_dataset"]
