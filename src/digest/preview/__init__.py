"""`digest preview`: the live browser preview on 127.0.0.1."""
