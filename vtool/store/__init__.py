"""One object-store format for the cache and every remote: loose objects, packs, and (on remotes) indexes."""
