"""One SQLite connection with digest's rules: WAL, fsync on commit, migrations, errors that say what to do."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Sequence

from digest.addresses import address_key
from digest.errors import LedgerError
from digest.filemodes import make_private, open_private, private_folder
from digest.store.schema import MIGRATIONS, READABLE_FROM, split_sql


class Database:
    """The SQLite ledger file (WAL mode). One connection, used by one thread."""

    def __init__(self, path: Path | str, *, readonly: bool = False, timeout: float = 5.0):
        self.path = Path(path)
        self.readonly = readonly
        try:
            if readonly:
                self._db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True,
                                           timeout=timeout, isolation_level=None)
            else:
                # Every column of the list is in here: 0700/0600, and SQLite gives its -wal and -shm
                # files the database file's mode.
                private_folder(self.path.parent)
                os.close(open_private(self.path))
                for companion in ("-wal", "-shm"):
                    make_private(self.path.with_name(self.path.name + companion))
                self._db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
        except (sqlite3.Error, OSError) as exc:
            raise self._error("cannot open", exc) from exc
        try:
            if not readonly:
                self._db.execute("PRAGMA journal_mode=WAL")
                # FULL: every commit (a claim, a batch of results) is fsynced before the transport is
                # called, so the claim survives a power cut too, not only a process crash. Measured
                # cost with 50-message batches: ~10-15 µs per message.
                self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.create_function("digest_address_key", 1, address_key, deterministic=True)
            self._migrate()
        except sqlite3.Error as exc:
            self._db.close()
            raise self._error("cannot use", exc) from exc

    # --- plumbing -----------------------------------------------------------------------------

    def _error(self, doing: str, exc: BaseException) -> LedgerError:
        text = str(exc)
        hint = "check that the folder exists and is writable, and that the disk is not full"
        if "readonly" in text or "read-only" in text.lower():  # SQLite's words, or EROFS at open
            hint = f"make {self.path} (and its folder) writable by this user; nothing was sent after this point"
        elif "full" in text:
            hint = "free disk space, then run the same command again: it resumes where it stopped"
        elif "locked" in text:
            hint = "another program holds the ledger open for writing; wait for it to finish"
        elif "not a database" in text or "malformed" in text:
            hint = f"{self.path} is damaged; restore it from a backup (PRAGMA integrity_check tells more)"
        return LedgerError(f"ledger {self.path}: {doing}: {text}", hint)

    def _migrate(self) -> None:
        version = self.version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise LedgerError(f"ledger {self.path} has schema version {version}, newer than this digest "
                              f"understands ({len(MIGRATIONS)}).", "upgrade digest")
        if version == len(MIGRATIONS):
            return
        if self.readonly and version >= READABLE_FROM:
            return  # what is missing only adds tables; readers check for them
        if self.readonly:
            raise LedgerError(f"ledger {self.path} needs a schema upgrade but is opened read-only.",
                              "run a command that writes (digest send) once")
        for number in range(version, len(MIGRATIONS)):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                # Another connection may have applied it while this one waited for the lock (two
                # first requests to `digest serve` open a new ledger at once).
                if self._db.execute("PRAGMA user_version").fetchone()[0] > number:
                    self._db.execute("COMMIT")
                    self.version = max(self.version, number + 1)
                    continue
                for statement in split_sql(MIGRATIONS[number]):
                    self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version={number + 1}")
                self._db.execute("COMMIT")
                self.version = number + 1
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _write(self, doing: str, fn, *args):
        """Run fn(*args) inside one IMMEDIATE transaction; any SQLite failure is a LedgerError."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise self._error(doing, exc) from exc
        try:
            result = fn(*args)
            self._db.execute("COMMIT")
            return result
        except sqlite3.Error as exc:
            self._rollback()
            raise self._error(doing, exc) from exc
        except BaseException:
            self._rollback()
            raise

    def _rollback(self) -> None:
        try:
            self._db.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # the transaction may already be gone (SQLite rolls back on some errors itself)

    def _read(self, sql: str, params: Sequence = ()) -> list:
        try:
            return self._db.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise self._error("cannot read", exc) from exc

    def close(self) -> None:
        """Close the connection (a clean close also checkpoints the WAL file)."""
        self._db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def integrity_check(self) -> str:
        """PRAGMA integrity_check: 'ok' when the file is sound."""
        return self._read("PRAGMA integrity_check")[0][0]

