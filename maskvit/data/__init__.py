"""Episodes on disk, clip datasets, the token cache, and converters from public datasets."""

from maskvit.data.clips import ClipDataset
from maskvit.data.splits import SPLITS, split_for
from maskvit.data.store import EpisodeStore, EpisodeStoreWriter
from maskvit.data.token_cache import TokenCache, TokenCacheWriter, TokenClipDataset

__all__ = [
    "SPLITS",
    "ClipDataset",
    "EpisodeStore",
    "EpisodeStoreWriter",
    "TokenCache",
    "TokenCacheWriter",
    "TokenClipDataset",
    "split_for",
]
