"""Pnyx: a self-hostable live-audio spaces server."""

__version__ = "0.1.0"
