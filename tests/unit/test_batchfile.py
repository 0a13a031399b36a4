"""The three batch formats, and every kind of bad line named by its number."""

from __future__ import annotations

import pytest

from mailmover.service.batchfile import BatchInvalid, BatchOptions, parse_batch

SRV = BatchOptions(source_server="imaps://old.example.com", dest_server="imap://new.example:1143")


def problems(text: str, options: BatchOptions = SRV) -> list[str]:
    with pytest.raises(BatchInvalid) as caught:
        parse_batch(text, options)
    return [str(p) for p in caught.value.problems]


def test_mailmover_csv_with_urls_bare_users_and_options() -> None:
    rows = parse_batch(
        "source,source_password,dest,dest_password,dest_preset,include,since\n"
        "imaps://alice%40a.com@imap.a.com,pw1,imap://alice@127.0.0.1:1143?tls=none,pw2,,,\n"
        "# a comment\n"
        '\n"bob",pw3,bob@b.example,"p,w4",gmail,INBOX|Sent*,2020-01-31\n',
        SRV,
    )
    assert [r.line for r in rows] == [2, 5]
    assert rows[0].source.user == "alice@a.com" and rows[0].source.host == "imap.a.com"
    assert rows[0].dest.security == "plain" and rows[0].dest.port == 1143
    assert rows[1].source.url == "imaps://bob@old.example.com:993"
    assert rows[1].dest.url == "imap://bob%40b.example@new.example:1143"
    assert (rows[1].source_password, rows[1].dest_password) == ("pw3", "p,w4")
    assert rows[1].options == {
        "dest_preset": "gmail",
        "include": ["INBOX", "Sent*"],
        "since": "2020-01-31",
    }
    assert "pw3" not in repr(rows[1])


def test_microsoft365_csv_uses_the_destination_admin() -> None:
    text = "EmailAddress,UserName,Password\nal@new.example,al@old.example,secret1\n"
    rows = parse_batch(text, BatchOptions(**{**SRV.__dict__, "dest_admin": True}))
    assert rows[0].source.user == "al@old.example" and rows[0].dest.user == "al@new.example"
    assert (rows[0].source_password, rows[0].dest_password) == ("secret1", None)
    assert problems(text) == [
        "line 2: EmailAddress is reached with the destination's admin login: give one "
        "(or ask each user)"
    ]
    asked = parse_batch(text, BatchOptions(**{**SRV.__dict__, "ask_users": True}))
    assert [(r.email, r.unknown_sides) for r in asked] == [("al@new.example", ("dest",))]


def test_imapsync_list_with_header_comment_and_trailing_semicolon() -> None:
    rows = parse_batch(
        "host1;user1;password1;host2;user2;password2\n"
        "# old server to new\n"
        "mail.old.example;joe;pw;imap://127.0.0.1:1143?tls=none;joe;pw2;\n"
        "mail.old.example:10993;ann;pw3;new.example;ann@new.example;pw4\n"
    )
    assert [r.line for r in rows] == [3, 4]
    assert rows[0].source.url == "imaps://joe@mail.old.example:993"
    assert rows[0].dest.url == "imap://joe@127.0.0.1:1143?tls=none"
    assert rows[1].source.port == 10993 and rows[1].dest.user == "ann@new.example"


def test_imapsync_extra_fields_are_refused_not_passed_through() -> None:
    assert problems("a;u;p;b;u;p;--delete2\n") == [
        "line 1: 1 extra field(s) after password2: imapsync options are not passed through; "
        "give mailmover's options instead"
    ]
    assert problems("a;u;p;b;u;p\na;v;p;b;v\n") == [
        "line 2: missing column password2 (need host1;user1;password1;host2;user2;password2)"
    ]


def test_every_bad_line_is_reported_with_its_number_and_no_password() -> None:
    text = (
        "source,source_password,dest,dest_password,source_preset\n"
        "alice,pw-a,alice,pw-a2,\n"  # good
        "bob,,bob,pw-b2,\n"  # empty password
        "ftp://carol@x,pw-c,carol,pw-c2,\n"  # bad URL
        "alice,pw-a,alice,pw-a2,\n"  # duplicate pair
        "dave,pw-d,dave,pw-d2,hotmail-classic\n"  # unknown preset
        "erin,pw-e,erin\n"  # missing column
        ",pw-f,frank,pw-f2,\n"  # missing source
    )
    got = problems(text)
    assert got == [
        "line 3: empty password in source_password",
        "line 4: bad URL in source: endpoint 'ftp://carol@x' must start with imaps:// or "
        "imap://; e.g. imaps://alice%40example.com@imap.example.com:993",
        "line 5: duplicate pair imaps://alice@old.example.com:993 -> "
        "imap://alice@new.example:1143 (first on line 2)",
        "line 6: unknown preset 'hotmail-classic' in source_preset",
        "line 7: 3 fields where the header has 5",
        "line 8: missing source",
    ]
    assert not any("pw-" in p for p in got)


def test_bare_user_without_a_server_and_unknown_header() -> None:
    assert problems("source,source_password,dest,dest_password\nal,p,al,q\n", BatchOptions()) == [
        "line 2: source is a bare user name: give a URL or a source server (--source-server)",
        "line 2: dest is a bare user name: give a URL or a dest server (--dest-server)",
    ]
    assert problems("source,source_password,dest,dest_password,colour\n") == [
        "line 1: unknown column 'colour' (known: source, source_password, dest, dest_password, "
        "source_preset, dest_preset, include, exclude, since, before, email)",
    ]


def test_an_unknown_format_or_an_empty_file() -> None:
    assert problems("name,password\nx,y\n")[0].startswith("line 1: unknown format")
    assert problems("source,source_password,dest,dest_password\n") == [
        "line 1: the file names no mailbox"
    ]


def test_a_password_in_a_url_is_refused_without_quoting_it() -> None:
    got = problems("source,source_password,dest,dest_password\nimaps://a:hunter2@h,p,b,q\n")
    assert len(got) == 1 and got[0].startswith("line 2: bad URL in source: do not put passwords")
    assert "hunter2" not in got[0]


def test_asking_users_lets_passwords_go_empty_and_needs_an_address() -> None:
    ask = BatchOptions(**{**SRV.__dict__, "ask_users": True})
    header = "source,dest,dest_password,email\n"
    assert problems(header + "cy,cy,pw-cy,\nbo,bo,,not-an-address\n", ask) == [
        "line 2: no address to send the user's link to: add an email column",
        "line 3: email is not an address: 'not-an-address'",
    ]
    rows = parse_batch(header + "al@old.example,al,pw-al,\nbo,bo,,bo@home.example\n", ask)
    assert [(r.email, r.unknown_sides) for r in rows] == [
        ("al@old.example", ("source",)),
        ("bo@home.example", ("source", "dest")),
    ]
    assert problems("source,dest,dest_password\nal@old.example,al,pw\n") == [
        "line 1: missing column source_password (needed unless that side is an admin login's "
        "or its users are asked)"
    ]


def test_an_upload_is_checked_whole_and_never_half_taken() -> None:
    from mailmover.service.batchfile import check_batch

    rows, bad = check_batch(
        b"\xef\xbb\xbfsource,source_password,dest,dest_password\na,p,a,q\n", SRV
    )
    assert [r.line for r in rows] == [2] and bad == []
    rows, bad = check_batch(b"source,source_password,dest,dest_password\na,p,a,q\nb,\xff,b,q\n")
    assert rows == [] and [str(b) for b in bad] == [
        "line 3: not UTF-8 text: save the file as CSV UTF-8"
    ]
    rows, bad = check_batch("source,source_password,dest,dest_password\na,p,a,q\nb,,b,q\n", SRV)
    assert rows == [] and [str(b) for b in bad] == ["line 3: empty password in source_password"]
