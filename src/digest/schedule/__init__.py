"""Scheduled sends: the `digest send --due` runner."""
