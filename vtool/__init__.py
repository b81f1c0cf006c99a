"""vtool: version data next to code."""

__version__ = "0.1.0"
