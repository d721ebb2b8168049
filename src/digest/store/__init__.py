"""The only owner of the state folder: the SQLite ledger and the OS locks."""
