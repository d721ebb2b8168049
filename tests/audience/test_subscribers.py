"""The subscriber list: encodings, delimiters, line numbers, validation, duplicates, tags, CLI.

Memory while streaming a big list is measured by bench/memory.py (figures, not a test).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from email_validator import EmailNotValidError, validate_email

from digest.addresses import normalise_address
from digest.audience.subscribers import (
    ListReport,
    Subscriber,
    filter_audience,
    in_audience,
    parse_tags,
    read_subscribers,
)
from digest.cli import cli
from digest.errors import SubscriberError
from tests.helpers.project import REPO


def write(tmp_path: Path, data: bytes | str, name: str = "subscribers.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def read(path: Path, **kw) -> tuple[list[Subscriber], ListReport]:
    report = ListReport()
    return list(read_subscribers(path, report=report, **kw)), report


# --- what spreadsheets export ---------------------------------------------------------------------


def test_utf8_bom_is_not_part_of_the_first_column_name(tmp_path):
    path = write(tmp_path, b"\xef\xbb\xbfemail,name\r\nann@example.org,\xc3\x85sa\r\n")
    subs, report = read(path)
    assert [(s.email, s.name, s.line) for s in subs] == [("ann@example.org", "Åsa", 2)]
    assert report.encoding == "utf-8-sig" and report.is_utf8 and report.notices == []


def test_semicolon_delimiter_is_sniffed_from_the_header(tmp_path):
    path = write(tmp_path, 'email;first_name;last_name;tags\nann@example.org;Ann;"Smith; Jones";members, climate\n')
    subs, report = read(path)
    assert report.delimiter == ";"
    assert subs[0].name == "Ann Smith; Jones"
    assert subs[0].tags == {"members", "climate"}


def test_crlf_line_ends_do_not_leak_into_values(tmp_path):
    path = write(tmp_path, b"email,name,city\r\nann@example.org,Ann,Utrecht\r\nbob@example.org,Bob,Delft\r\n")
    subs, _ = read(path)
    assert [dict(s.fields) for s in subs] == [
        {"email": "ann@example.org", "name": "Ann", "city": "Utrecht"},
        {"email": "bob@example.org", "name": "Bob", "city": "Delft"},
    ]
    assert [s.line for s in subs] == [2, 3]


def test_quoted_newlines_keep_physical_line_numbers(tmp_path):
    path = write(tmp_path, (
        "email,name,address\r\n"
        'ann@example.org,Ann,"Herengracht 1\r\n1015 BA\r\nAmsterdam"\r\n'   # lines 2–4
        "bob@,Bob,\r\n"                                                     # line 5
        "cee@example.org,Cee,\r\n"                                          # line 6
    ))
    subs, report = read(path)
    assert subs[0].fields["address"] == "Herengracht 1\r\n1015 BA\r\nAmsterdam"
    assert [(s.email, s.line) for s in subs] == [("ann@example.org", 2), ("cee@example.org", 6)]
    assert [(p.line, p.value) for p in report.problems] == [(5, "bob@")]


def test_windows_1252_is_detected_decoded_and_reported(tmp_path):
    path = write(tmp_path, "email,name\r\nbob@example.org,Bob\r\nrene@example.org,René Müller\r\n".encode("cp1252"))
    subs, report = read(path)
    assert [s.name for s in subs] == ["Bob", "René Müller"]
    assert (report.encoding, report.encoding_label, report.is_utf8) == ("cp1252", "Windows-1252", False)
    assert report.notices == [f"{path} is not UTF-8 (first at line 3): read it as Windows-1252. "
                              "Check that accented names look right, or save the file as 'CSV UTF-8'."]


def test_a_file_mixing_utf8_and_windows_1252_is_refused(tmp_path):
    data = "email,name\n".encode() + "ann@example.org,Åsa\n".encode() + "rene@example.org,René\n".encode("cp1252")
    path = write(tmp_path, data)
    with pytest.raises(SubscriberError, match=r"mixes encodings: it is UTF-8 on line 2 but line 3 is not UTF-8"):
        read_subscribers(path)


def test_utf16_from_excel_unicode_text_is_read(tmp_path):
    path = write(tmp_path, "email\tname\r\nann@example.org\tÅsa\r\n".encode("utf-16"))
    subs, report = read(path)
    assert [(s.email, s.name, s.line) for s in subs] == [("ann@example.org", "Åsa", 2)]
    assert (report.encoding, report.delimiter) == ("utf-16", "\t")


def test_excel_sep_line_sets_the_delimiter_and_counts_as_a_line(tmp_path):
    path = write(tmp_path, "sep=;\nemail;name\nann@example.org;Ann, the first\n")
    subs, report = read(path)
    assert [(s.name, s.line) for s in subs] == [("Ann, the first", 3)]
    assert report.delimiter == ";"


# --- file-level faults ------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"\xef\xbb\xbf", b"\r\n  \n"])
def test_empty_file_is_an_error_naming_the_file(tmp_path, data):
    path = write(tmp_path, data)
    with pytest.raises(SubscriberError) as exc:
        read_subscribers(path)
    assert exc.value.message == f"{path} is empty."
    assert "header line first" in exc.value.hint


def test_missing_email_column_names_the_columns_found(tmp_path):
    path = write(tmp_path, "name,mail addr\nAnn,ann@example.org\n")
    with pytest.raises(SubscriberError) as exc:
        read_subscribers(path)  # raises at the call, before any row is asked for
    assert exc.value.message == f"{path}:1: no 'email' column (found 'name', 'mail addr')."
    assert exc.value.hint == "name the column of addresses 'email' in the header line"


def test_a_list_without_header_line_is_explained(tmp_path):
    path = write(tmp_path, "ann@example.org,Ann\nbob@example.org,Bob\n")
    with pytest.raises(SubscriberError, match=r":1: the first line holds an address, not column names"):
        read_subscribers(path)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(SubscriberError, match=r"nope\.csv: no such file\."):
        read_subscribers(tmp_path / "nope.csv")
    with pytest.raises(SubscriberError, match=r"is a folder, not a subscriber list"):
        read_subscribers(tmp_path)


def test_binary_files_are_not_text(tmp_path):
    xlsx = write(tmp_path, b"PK\x03\x04\x14\x00\x06\x00" + bytes(200), "list.xlsx")
    with pytest.raises(SubscriberError, match=r"list\.xlsx is a spreadsheet workbook, not a CSV text file"):
        read_subscribers(xlsx)
    nul = write(tmp_path, b"email\nann@example.org\nb\x00b@example.org\n")
    with pytest.raises(SubscriberError) as exc:
        read_subscribers(nul)
    assert exc.value.message == f"{nul}:3: not a text file (it contains NUL bytes)."


def test_unclosed_quote_is_refused_with_its_line(tmp_path):
    message = ("{}:3: a double-quoted value opened on this line is never closed, so every "
               "row after it would be swallowed into one value.")
    path = write(tmp_path, 'email,name,screen\nann@example.org,Ann,27 wide\nbob@example.org,"Bob\n'
                           'cee@example.org,Cee\n')
    with pytest.raises(SubscriberError) as exc:
        read_subscribers(path)  # an odd number of quotes: found before any row is handed out
    assert exc.value.message == message.format(path)
    # With a second, literal quote the count is even and the first pass cannot tell: the reader still
    # refuses the file, when it reaches the end, rather than report rows 3–4 as one value.
    path = write(tmp_path, 'email,name,screen\nann@example.org,Ann,27" wide\nbob@example.org,"Bob\n'
                           'cee@example.org,Cee\n')
    rows = read_subscribers(path)
    assert next(rows).email == "ann@example.org"
    with pytest.raises(SubscriberError) as exc:
        next(rows)
    assert exc.value.message == message.format(path)


def test_a_lone_quote_inside_an_unquoted_value_is_just_a_character(tmp_path):
    path = write(tmp_path, 'email,name,screen\nann@example.org,Ann,27" wide\nbob@example.org,Bob,\n')
    subs, report = read(path)
    assert [(s.email, s.fields["screen"]) for s in subs] == [("ann@example.org", '27" wide'), ("bob@example.org", "")]
    assert report.problems == []


def test_a_stray_quote_that_closes_later_is_one_problem_naming_the_lines(tmp_path):
    path = write(tmp_path, 'email,name\nann@example.org,"Ann\nbob@example.org,Bob\ncee@example.org,"Cee"x\n'
                           'dee@example.org,Dee\n')
    subs, report = read(path)
    assert [(s.email, s.line) for s in subs] == [("dee@example.org", 5)]
    assert [(p.line, p.reason) for p in report.problems] == [
        (2, "the row cannot be parsed as CSV (',' expected after '\"'; lines 2–4: is a double quote on line 2 "
            "not closed?)")]


def test_unreadable_file(tmp_path):
    path = write(tmp_path, "email\nann@example.org\n")
    path.chmod(0)
    try:
        if _can_read(path):
            pytest.skip("running as root: permissions do not stop reading")
        with pytest.raises(SubscriberError, match=r"cannot read the file \(Permission denied\)"):
            read_subscribers(path)
    finally:
        path.chmod(0o644)


def test_a_path_that_cannot_be_opened(tmp_path):
    write(tmp_path, "email\n", "list.csv")
    with pytest.raises(SubscriberError) as exc:
        read_subscribers(tmp_path / "list.csv" / "inner.csv")
    assert exc.value.message == f"{tmp_path / 'list.csv' / 'inner.csv'}: cannot read the file (Not a directory)."


def _can_read(path: Path) -> bool:
    try:
        path.read_bytes()
        return True
    except PermissionError:
        return False


# --- rows: validation, duplicates, fields ----------------------------------------------------------


def test_duplicates_by_case_collapse_and_the_first_wins(tmp_path):
    path = write(tmp_path, "email,name\nAnn@Example.org,First Ann\nbob@example.org,Bob\nann@example.ORG,Second Ann\n")
    subs, report = read(path)
    assert [(s.email, s.name, s.line) for s in subs] == [("Ann@example.org", "First Ann", 2),
                                                          ("bob@example.org", "Bob", 3)]
    assert (report.rows, report.valid, report.duplicates, report.invalid) == (3, 2, 1, 0)
    assert [(p.line, p.value, p.reason, p.kind) for p in report.problems] == [
        (4, "ann@example.ORG", "duplicate of line 2", "duplicate")]


def test_invalid_rows_are_skipped_with_line_and_reason(tmp_path):
    path = write(tmp_path, (
        "email,name\n"
        "ann@example.org,Ann\n"
        "bob@,Bob\n"
        "not an address,Nobody\n"
        ",No address\n"
        ",,\n"                       # a blank row: skipped silently, not a problem
        "cee@example.org,Cee\n"
    ))
    subs, report = read(path)
    assert [s.email for s in subs] == ["ann@example.org", "cee@example.org"]
    assert [p.format("subscribers.csv") for p in report.problems] == [
        "subscribers.csv:3: 'bob@' — There must be something after the @-sign.",
        "subscribers.csv:4: 'not an address' — An email address must have an @-sign.",
        "subscribers.csv:5: '' — no email address",
    ]
    assert (report.rows, report.valid, report.invalid, report.blank, report.skipped) == (5, 2, 3, 1, 3)


def test_a_row_with_more_values_than_columns_is_a_problem(tmp_path):
    path = write(tmp_path, "email,name\nann@example.org,Smith, Ann\nbob@example.org,Bob,,\n")
    subs, report = read(path)
    assert [s.email for s in subs] == ["bob@example.org"]  # trailing empty cells are harmless
    assert report.problems[0].line == 2
    assert report.problems[0].reason == ("the row has 3 values but the header has 2 columns; "
                                         "a value containing ',' must be in double quotes")


def test_a_row_that_is_not_valid_csv_is_skipped_and_reading_goes_on(tmp_path):
    path = write(tmp_path, 'email,name\n"ann@example.org"x,Ann\nbob@example.org,Bob\n')
    subs, report = read(path)
    assert [(s.email, s.line) for s in subs] == [("bob@example.org", 3)]
    assert report.problems[0].line == 2
    assert report.problems[0].reason == "the row cannot be parsed as CSV (',' expected after '\"'; line 2)"


def test_idn_unicode_and_punycode_are_the_same_person(tmp_path):
    path = write(tmp_path, "email\nlea@bücher.example.org\nLEA@xn--bcher-kva.example.org\n")
    subs, report = read(path)
    assert [(s.email, s.key) for s in subs] == [("lea@bücher.example.org", "lea@xn--bcher-kva.example.org")]
    assert [(p.line, p.reason) for p in report.problems] == [(3, "duplicate of line 2")]


def test_idn_keys_follow_the_rules_the_mail_is_sent_by(tmp_path):
    # IDNA 2008 / UTS 46, as email-validator and the message headers use: 'straße' is its own
    # domain (xn--strae-oqa), not another spelling of 'strasse' (the IDNA 2003 mapping).
    from digest.delivery.mime import header_address

    path = write(tmp_path, "email\nlea@straße.example\nlea@strasse.example\nLEA@XN--STRAE-OQA.example\n")
    subs, report = read(path)
    assert [s.key for s in subs] == ["lea@xn--strae-oqa.example", "lea@strasse.example"]
    assert [(p.line, p.reason) for p in report.problems] == [(4, "duplicate of line 2")]
    assert header_address(subs[0].email) == subs[0].key


def test_extra_columns_become_merge_fields_with_normalised_names(tmp_path):
    path = write(tmp_path, "Email Address,First Name,Last Name,Organisation,Member-Since,\n"
                           " ann@example.org , Ann ,de Vries,Innovation Hub,2019,ignored\n")
    (sub,), _ = read(path)
    assert sub.email == "ann@example.org"
    assert sub.name == "Ann de Vries"
    assert dict(sub.fields) == {"email": "ann@example.org", "first_name": "Ann", "last_name": "de Vries",
                                "organisation": "Innovation Hub", "member_since": "2019", "name": "Ann de Vries"}
    with pytest.raises(TypeError):
        sub.fields["email"] = "x@example.org"  # read-only: a subscriber cannot be changed by a consumer


def test_name_column_wins_and_line_breaks_never_reach_the_display_name(tmp_path):
    path = write(tmp_path, 'email,name,first_name\nann@example.org,"Ann\r\nSmith",Annie\nbob@example.org,,Bob\n')
    subs, _ = read(path)
    assert [s.name for s in subs] == ["Ann Smith", "Bob"]
    assert subs[0].fields["first_name"] == "Annie"


def test_repeated_column_is_an_error(tmp_path):
    path = write(tmp_path, "email,Tags,tags\nann@example.org,a,b\n")
    with pytest.raises(SubscriberError) as exc:
        read_subscribers(path)
    assert exc.value.message == f"{path}:1: column 'tags' appears twice."


def test_strict_mode_raises_on_the_first_bad_row(tmp_path):
    path = write(tmp_path, "email\nann@example.org\nANN@example.org\nbob@\ncee@\n")
    it = read_subscribers(path, strict=True)
    assert next(it).email == "ann@example.org"
    with pytest.raises(SubscriberError) as exc:
        next(it)  # the duplicate on line 3 is collapsed, not an error; line 4 is
    assert exc.value.message == f"{path}:4: 'bob@' — There must be something after the @-sign."
    assert "digest subscribers check" in exc.value.hint


def test_problems_are_counted_beyond_the_ones_kept(tmp_path):
    path = write(tmp_path, "email\n" + "".join(f"bad{i}@\n" for i in range(8)) + "ok@example.org\n")
    report = ListReport(max_problems=5)
    subs = list(read_subscribers(path, report=report))
    assert [s.email for s in subs] == ["ok@example.org"]
    assert (report.invalid, len(report.problems), report.problems_not_kept) == (8, 5, 3)
    assert [p.line for p in report.problems] == [2, 3, 4, 5, 6]


ADDRESSES = [
    "ann@example.org", "Ann.Smith+news@Example.ORG", "a!#$%&'*+/=?^_`{|}~-b@example.net", "x@sub.example.co.uk",
    "Postmaster@example.org", "INFO@example.org", "lea@bücher.example.org", "lea@XN--BCHER-KVA.example.org",
    "jürgen@example.org", '"ann smith"@example.org', '"ann"@example.org', "Ann <ann@example.org>",
    "ann.@example.org", ".ann@example.org", "an..n@example.org", "ann@example", "ann@localhost", "ann@host.test",
    "ann@example.123", "ann@-example.org", "ann@exa_mple.org", "ann@example..org", "ann@example.org.",
    "a" * 64 + "@example.org", "a" * 65 + "@example.org", "a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 60 + ".org",
    "a" * 60 + "@" + ("b" * 60 + ".") * 3 + "example.org", "ann@[127.0.0.1]", "ann@@example.org", "ann@ex ample.org",
    "@example.org", "ann@", "ann", "ann@exämple.org", "ann@EXÄMPLE.org", "ann@xn--xmple-gra.org",
]


@pytest.mark.parametrize("address", ADDRESSES)
def test_normalise_address_agrees_with_email_validator(address):
    """The per-domain shortcut must give exactly email-validator's answer, error text included."""
    try:
        expected = validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        with pytest.raises(EmailNotValidError) as got:
            normalise_address(address)
        assert str(got.value) == str(exc)
        for _ in range(2):  # a second time, with the domain's verdict remembered, too
            with pytest.raises(EmailNotValidError):
                normalise_address(address)
    else:
        assert normalise_address(address) == expected
        assert normalise_address(address) == expected


# --- tags and audience ---------------------------------------------------------------------------


def test_tags_split_on_semicolon_pipe_or_comma_and_ignore_case():
    assert parse_tags(" Members; CLIMATE|dei , ,") == {"members", "climate", "dei"}


def test_tag_filter_keeps_subscribers_with_any_tag(tmp_path):
    path = write(tmp_path, "email,tags\na@example.org,members;climate\nb@example.org,DEI\n"
                           "c@example.org,\nd@example.org,climate\n")
    subs, report = read(path, tags=["Climate", "dei"])
    assert [s.email for s in subs] == ["a@example.org", "b@example.org", "d@example.org"]
    assert (report.valid, report.filtered_out) == (4, 1)
    assert report.tags == {"members": 1, "climate": 2, "dei": 1}
    everyone, _ = read(path)
    assert [s.email for s in filter_audience(everyone, "MEMBERS")] == ["a@example.org"]
    assert [s.email for s in filter_audience(everyone, ())] == [s.email for s in everyone]
    assert in_audience(everyone[2], None) and not in_audience(everyone[2], ["climate"])


def test_example_list_is_all_valid(tmp_path):
    subs, report = read(REPO / "subscribers.example.csv")
    assert (report.rows, report.valid, report.skipped, report.encoding) == (12, 12, 0, "utf-8")
    assert "lea@bücher.example.org" in {s.email for s in subs}
    assert all(s.email.rsplit("@", 1)[1].endswith(("example.org", "example.net", "example.com")) for s in subs)
    assert {"members", "climate", "dei"} <= set(report.tags)


# --- the CLI -----------------------------------------------------------------------------------------


@pytest.fixture
def listdir(tmp_path, monkeypatch):
    """An empty project folder with a digest.toml (default paths) as the current folder."""
    (tmp_path / "digest.toml").write_text("[paths]\nsubscribers = \"list.csv\"\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DIGEST_CONFIG", raising=False)
    return tmp_path


CHECK_LIST = (
    "email,first_name,tags\r\n"
    "ann@example.org,Ann,members;climate\r\n"
    "bob@,Bob,members\r\n"
    "ANN@example.org,Ann again,dei\r\n"
    "cee@example.org,Cee,dei\r\n"
)


def test_cli_check_lists_problems_and_counts(listdir):
    write(listdir, CHECK_LIST, "list.csv")
    result = CliRunner().invoke(cli, ["subscribers", "check"])  # FILE defaults to [paths] subscribers
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[:2] == [
        "list.csv:3: 'bob@' — There must be something after the @-sign.",
        "list.csv:4: 'ANN@example.org' — duplicate of line 2",
    ]
    assert "list.csv (comma-separated)\n" in result.output
    assert "  valid        2\n  invalid      1\n  duplicates   1\n" in result.output
    assert "  tags         climate 1, dei 1, members 1\n" in result.output


def test_cli_check_strict_fails_on_invalid_rows(listdir):
    write(listdir, CHECK_LIST, "list.csv")
    result = CliRunner().invoke(cli, ["subscribers", "check", "list.csv", "--strict"])
    assert result.exit_code == 1
    assert "1 invalid row(s) in list.csv (--strict)." in result.output
    write(listdir, "email\nann@example.org\nANN@example.org\n", "dupes.csv")
    result = CliRunner().invoke(cli, ["subscribers", "check", "dupes.csv", "--strict"])
    assert result.exit_code == 0  # duplicates collapse; they are not invalid


def test_cli_check_reports_the_encoding_and_the_tag_audience(listdir):
    write(listdir, CHECK_LIST.replace("Cee", "Céline").encode("cp1252"), "list.csv")
    result = CliRunner().invoke(cli, ["subscribers", "check", "--tag", "DEI"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("note: list.csv is not UTF-8 (first at line 5): read it as Windows-1252.")
    assert "list.csv (comma-separated, Windows-1252)\n" in result.output
    assert "  audience     1  (tag DEI)\n" in result.output
    assert "  recipients   1\n" in result.output


def test_cli_check_counts_suppressed_addresses_from_the_ledger(listdir):
    ledger_mod = pytest.importorskip("digest.store.ledger")
    from digest.config import load_settings

    write(listdir, CHECK_LIST, "list.csv")
    with ledger_mod.Ledger.for_settings(load_settings(listdir / "digest.toml")) as ledger:
        ledger.suppress("Cee@Example.org", "unsubscribed")
    result = CliRunner().invoke(cli, ["subscribers", "check"])
    assert result.exit_code == 0, result.output
    assert "  suppressed   1\n  recipients   1\n" in result.output


def test_cli_check_missing_file_is_a_subscriber_error(listdir):
    result = CliRunner().invoke(cli, ["subscribers", "check"])
    assert isinstance(result.exception, SubscriberError)
    assert result.exception.message == f"{listdir / 'list.csv'}: no such file."


def test_a_long_list_streams_and_every_duplicate_is_counted_across_the_dedupe_tables_growth(tmp_path):
    # 20,000 rows make the address table grow several times (it starts with 4,096 slots); every
    # 7th row repeats an earlier address in another case, which must be found after each growth.
    import types

    rows = ["email,first_name"]
    for i in range(20_000):
        rows.append(f"reader{i - 6}@EXAMPLE.org,R{i}" if i % 7 == 6 else f"Reader{i}@Example.org,R{i}")
    path = write(tmp_path, "\n".join(rows) + "\n")
    report = ListReport()
    stream = read_subscribers(path, report=report)
    assert isinstance(stream, types.GeneratorType)  # a stream, not a list held in memory
    kept = sum(1 for _ in stream)
    duplicates = sum(1 for i in range(20_000) if i % 7 == 6)
    assert (report.rows, report.valid, report.duplicates) == (20_000, 20_000 - duplicates, duplicates)
    assert kept == 20_000 - duplicates


# --- a header that is far too wide --------------------------------------------------------------

def _wide_list(path, n: int, *, repeat: str | None = None) -> None:
    cols = ["email", *(f"c{i}" for i in range(n)), *([repeat] if repeat else [])]
    path.write_text(",".join(cols) + "\nann@example.org" + "," * (len(cols) - 1) + "\n", encoding="utf-8")


def test_a_repeated_column_in_a_16000_column_header_is_found_at_once(tmp_path):
    import time

    path = tmp_path / "wide.csv"
    _wide_list(path, 16_000, repeat="c1")
    started = time.perf_counter()
    with pytest.raises(SubscriberError) as info:
        list(read_subscribers(path))
    assert time.perf_counter() - started < 1
    assert f"{path}:1: column 'c1' appears twice" in str(info.value)


def test_a_header_wider_than_a_spreadsheet_is_refused_naming_the_line(tmp_path):
    import time

    path = tmp_path / "wider.csv"
    _wide_list(path, 20_000)
    started = time.perf_counter()
    with pytest.raises(SubscriberError) as info:
        list(read_subscribers(path))
    assert time.perf_counter() - started < 1
    assert f"{path}:1: the header has 20,001 columns; at most 16,384" in str(info.value)
    assert len(str(info.value)) < 400


def test_many_repeated_columns_are_named_a_few_at_a_time(tmp_path):
    path = tmp_path / "repeats.csv"
    path.write_text("email," + ",".join(f"c{i % 500}" for i in range(5000)) + "\nann@example.org\n", encoding="utf-8")
    with pytest.raises(SubscriberError) as info:
        list(read_subscribers(path))
    assert "columns 'c0', 'c1', 'c10', 'c100', 'c101' and 495 more appear more than once" in str(info.value)
