"""call-importer: migrate historical call logs into HighLevel conversations."""

__version__ = "0.1.0"
