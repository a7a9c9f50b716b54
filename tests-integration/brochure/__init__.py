"""Helpers for the brochure tests: small real images and packed files, and the Multiverse example."""
