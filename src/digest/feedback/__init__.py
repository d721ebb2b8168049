"""Feedback after a send: bounces, complaints and unsubscribes reported by providers and bounce mail."""
