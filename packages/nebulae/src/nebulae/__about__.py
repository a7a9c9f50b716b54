"""Version of the nebulae meta-distribution."""

__version__ = "1.0.0"
