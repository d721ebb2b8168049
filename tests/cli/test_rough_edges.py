"""What a first-time user hit: an unsubscribe of a non-address, --test to a bad address, `digest new` outside a project."""

from __future__ import annotations

import pytest

from digest.config import find_config
from tests.helpers.project import EXAMPLE_ISSUE
from tests.helpers.send import run


def test_unsubscribe_refuses_what_is_not_an_address(project, capsys):
    code, out, err = run(capsys, "unsubscribe", "not-an-email")
    assert code == 1
    assert "'not-an-email' is not an email address" in err and "nothing was added" in err
    assert "unsubscribed" not in out
    code, out, _ = run(capsys, "suppress", "list")
    assert out.strip().endswith("0 suppressed addresses")


def test_unsubscribe_checks_every_address_before_adding_any(project, capsys):
    code, out, err = run(capsys, "unsubscribe", "ann@example.org", "bob@")
    assert code == 1 and "'bob@' is not an email address" in err
    assert run(capsys, "suppress", "list")[1].strip().endswith("0 suppressed addresses")


def test_suppress_import_refuses_a_row_that_is_not_an_address(project, capsys):
    (project / "gone.csv").write_text("email,reason\nann@example.org,asked\nbob@,typo\n", encoding="utf-8")
    code, out, err = run(capsys, "suppress", "import", "gone.csv")
    assert code == 1 and "gone.csv:3: 'bob@' is not an email address" in err


def test_a_bad_test_address_is_named_as_given_to_test(project, capsys):
    code, out, err = run(capsys, "send", EXAMPLE_ISSUE, "--test", "me@")
    assert code == 1
    assert "--test 'me@' is not an email address (There must be something after the @-sign.)" in err
    assert "subscriber list" not in err


def test_new_outside_a_project_says_so_and_creates_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DIGEST_CONFIG", raising=False)
    if find_config(tmp_path) is not None:
        pytest.skip("a digest.toml above the temporary folder")
    code, out, err = run(capsys, "new", "Hello")
    assert code == 1
    assert f"no digest.toml in {tmp_path} or any folder above it" in err and "digest init" in err
    assert list(tmp_path.iterdir()) == []
    code, out, err = run(capsys, "unsubscribe", "ann@example.org")
    assert code == 1 and "no digest.toml" in err
    assert list(tmp_path.iterdir()) == []  # no state folder either
