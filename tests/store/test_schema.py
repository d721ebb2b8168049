"""The ledger's migrations: split into statements correctly, whatever their comments say."""

from __future__ import annotations

from digest.store.schema import MIGRATIONS, split_sql


def test_a_semicolon_in_a_comment_does_not_split_a_statement():
    script = """
    -- the first table; its comment has a semicolon
    CREATE TABLE a (x INTEGER);  -- and so does this one; see?
    CREATE INDEX a_x ON a (x);
    """
    assert split_sql(script) == ["CREATE TABLE a (x INTEGER)", "CREATE INDEX a_x ON a (x)"]


def test_every_shipped_migration_splits_into_whole_statements():
    for number, script in enumerate(MIGRATIONS, 1):
        for statement in split_sql(script):
            assert statement.split()[0].upper() in {"CREATE", "UPDATE", "INSERT", "DELETE", "DROP", "ALTER"}, (
                number, statement[:60])
