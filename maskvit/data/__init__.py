"""Episodes on disk, clip datasets, the token cache, and converters from public datasets."""

from maskvit.data.episodes import SPLITS, split_for
from maskvit.data.store import ClipDataset, EpisodeStore, EpisodeStoreWriter
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
