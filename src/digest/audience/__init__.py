"""Who receives an issue: the subscriber list, the one address-key rule, unsubscribe tokens."""
