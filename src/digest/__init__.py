"""digest: write a newsletter issue as a file, preview it, send it."""

__version__ = "0.1.0"
