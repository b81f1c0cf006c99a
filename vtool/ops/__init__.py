"""One plain function per command; each returns a frozen dataclass and never prints."""
