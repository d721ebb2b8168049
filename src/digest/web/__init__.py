"""The reader-facing web application: one-click unsubscribe, the archive, provider webhooks (`digest serve`)."""
