"""What `digest init` copies into a new newsletter: the templates (the example project uses the same ones)."""
