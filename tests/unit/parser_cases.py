"""Status responses, response codes and continuations the parser must read (RFC examples,
Dovecot, Gmail), plus input it must refuse. ``CASES`` is the whole table."""

from __future__ import annotations

from parser_cases_data import DATA_CASES

from mailmover.imap.proto.responses import (
    Capability,
    Continuation,
    Enabled,
    Exists,
    Flags,
    Recent,
    Response,
    ResponseCode,
    Tagged,
    UntaggedStatus,
)


def words(text: str) -> frozenset[str]:
    return frozenset(text.split())


DOVECOT_CAPS = words(
    "IMAP4REV1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS AUTH=PLAIN"
)

STATUS_CASES: list[tuple[str, bytes, list[Response]]] = [
    # -- greetings, BYE, capabilities ------------------------------------------------
    (
        "dovecot-greeting",
        b"* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS "
        b"AUTH=PLAIN] Dovecot ready.\r\n",
        [
            UntaggedStatus(
                "OK",
                ResponseCode(
                    "CAPABILITY",
                    "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS AUTH=PLAIN",
                    DOVECOT_CAPS,
                ),
                "Dovecot ready.",
            )
        ],
    ),
    (
        "gmail-greeting",
        b"* OK Gimap ready for requests from 198.51.100.7 h8mb40412345wrc\r\n",
        [UntaggedStatus("OK", None, "Gimap ready for requests from 198.51.100.7 h8mb40412345wrc")],
    ),
    (
        "preauth",
        b"* PREAUTH IMAP4rev1 server logged in as Smith\r\n",
        [UntaggedStatus("PREAUTH", None, "IMAP4rev1 server logged in as Smith")],
    ),
    (
        "bye",
        b"* BYE Autologout; idle for too long\r\n",
        [UntaggedStatus("BYE", None, "Autologout; idle for too long")],
    ),
    (
        "bye-alert-then-tagged",
        b"* BYE [ALERT] Server shutting down\r\nA9 OK LOGOUT completed\r\n",
        [
            UntaggedStatus("BYE", ResponseCode("ALERT"), "Server shutting down"),
            Tagged("A9", "OK", None, "LOGOUT completed"),
        ],
    ),
    (
        "gmail-capability",
        b"* CAPABILITY IMAP4rev1 UNSELECT IDLE NAMESPACE QUOTA ID XLIST CHILDREN X-GM-EXT-1 "
        b"UIDPLUS COMPRESS=DEFLATE ENABLE MOVE CONDSTORE ESEARCH UTF8=ACCEPT LIST-EXTENDED "
        b"LIST-STATUS LITERAL- SPECIAL-USE APPENDLIMIT=35651584\r\n",
        [
            Capability(
                words(
                    "IMAP4REV1 UNSELECT IDLE NAMESPACE QUOTA ID XLIST CHILDREN X-GM-EXT-1 UIDPLUS "
                    "COMPRESS=DEFLATE ENABLE MOVE CONDSTORE ESEARCH UTF8=ACCEPT LIST-EXTENDED "
                    "LIST-STATUS LITERAL- SPECIAL-USE APPENDLIMIT=35651584"
                )
            )
        ],
    ),
    (
        "capability-trailing-space",
        b"* CAPABILITY imap4rev1 \r\n",
        [Capability(frozenset({"IMAP4REV1"}))],
    ),
    (
        "enabled",
        b"* ENABLED CONDSTORE QRESYNC\r\n* ENABLED\r\n",
        [Enabled(frozenset({"CONDSTORE", "QRESYNC"})), Enabled(frozenset())],
    ),
    # -- tagged completions and response codes -----------------------------------------
    (
        "login-with-capability",
        b"a1 OK [CAPABILITY IMAP4rev1 MOVE] Logged in\r\n",
        [
            Tagged(
                "a1",
                "OK",
                ResponseCode("CAPABILITY", "IMAP4rev1 MOVE", frozenset({"IMAP4REV1", "MOVE"})),
                "Logged in",
            )
        ],
    ),
    (
        "authenticationfailed",
        b"a1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n",
        [Tagged("a1", "NO", ResponseCode("AUTHENTICATIONFAILED"), "Authentication failed.")],
    ),
    (
        "gmail-web-login",
        b"a1 NO [ALERT] Please log in via your web browser: https://support.google.com/mail/"
        b"accounts/answer/78754 (Failure)\r\n",
        [
            Tagged(
                "a1",
                "NO",
                ResponseCode("ALERT"),
                "Please log in via your web browser: https://support.google.com/mail/accounts/"
                "answer/78754 (Failure)",
            )
        ],
    ),
    (
        "rfc3501-select",
        b"* 172 EXISTS\r\n* 1 RECENT\r\n* OK [UNSEEN 12] Message 12 is first unseen\r\n"
        b"* OK [UIDVALIDITY 3857529045] UIDs valid\r\n* OK [UIDNEXT 4392] Predicted next UID\r\n"
        b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
        b"* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited\r\n"
        b"A142 OK [READ-WRITE] SELECT completed\r\n",
        [
            Exists(172),
            Recent(1),
            UntaggedStatus("OK", ResponseCode("UNSEEN", "12", 12), "Message 12 is first unseen"),
            UntaggedStatus(
                "OK", ResponseCode("UIDVALIDITY", "3857529045", 3857529045), "UIDs valid"
            ),
            UntaggedStatus("OK", ResponseCode("UIDNEXT", "4392", 4392), "Predicted next UID"),
            Flags(("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")),
            UntaggedStatus(
                "OK",
                ResponseCode(
                    "PERMANENTFLAGS", "(\\Deleted \\Seen \\*)", ("\\Deleted", "\\Seen", "\\*")
                ),
                "Limited",
            ),
            Tagged("A142", "OK", ResponseCode("READ-WRITE"), "SELECT completed"),
        ],
    ),
    (
        "condstore-select",
        b"* OK [HIGHESTMODSEQ 715194045007] Highest\r\n"
        b"* OK [APPENDLIMIT 35651584] Maximum message size\r\n"
        b"* OK [NOMODSEQ] Sorry, this mailbox format doesn't support modsequences\r\n",
        [
            UntaggedStatus(
                "OK", ResponseCode("HIGHESTMODSEQ", "715194045007", 715194045007), "Highest"
            ),
            UntaggedStatus(
                "OK", ResponseCode("APPENDLIMIT", "35651584", 35651584), "Maximum message size"
            ),
            UntaggedStatus(
                "OK",
                ResponseCode("NOMODSEQ"),
                "Sorry, this mailbox format doesn't support modsequences",
            ),
        ],
    ),
    (
        "gmail-select-brackets-in-text",
        b"A1 OK [READ-WRITE] [Gmail]/All Mail selected. (Success)\r\n",
        [Tagged("A1", "OK", ResponseCode("READ-WRITE"), "[Gmail]/All Mail selected. (Success)")],
    ),
    (
        "appenduid",
        b"A003 OK [APPENDUID 38505 3955] APPEND completed\r\n"
        b"A004 OK [APPENDUID 38505 3955:3957] MULTIAPPEND completed\r\n"
        b"A005 OK [APPENDUID 1700000000 5,7:6] Append completed (0.004 + 0.000 secs).\r\n",
        [
            Tagged(
                "A003",
                "OK",
                ResponseCode("APPENDUID", "38505 3955", (38505, [3955])),
                "APPEND completed",
            ),
            Tagged(
                "A004",
                "OK",
                ResponseCode("APPENDUID", "38505 3955:3957", (38505, [3955, 3956, 3957])),
                "MULTIAPPEND completed",
            ),
            Tagged(
                "A005",
                "OK",
                ResponseCode("APPENDUID", "1700000000 5,7:6", (1700000000, [5, 6, 7])),
                "Append completed (0.004 + 0.000 secs).",
            ),
        ],
    ),
    (
        # UIDs are 1..2**32-1 (RFC 3501 nz-number): a set holding 0 or 2**32 is not read.
        "appenduid-not-a-uid",
        b"A6 OK [APPENDUID 38505 0:2] Append completed\r\n"
        b"A7 OK [APPENDUID 38505 4294967296] Append completed\r\n",
        [
            Tagged("A6", "OK", ResponseCode("APPENDUID", "38505 0:2", None), "Append completed"),
            Tagged(
                "A7", "OK", ResponseCode("APPENDUID", "38505 4294967296", None), "Append completed"
            ),
        ],
    ),
    (
        "copyuid",
        b"A003 OK [COPYUID 38505 304,319:320 3956:3958] Done\r\n"
        b"* OK [COPYUID 432432 42:43 1:2] Moved UIDs.\r\n",
        [
            Tagged(
                "A003",
                "OK",
                ResponseCode(
                    "COPYUID",
                    "38505 304,319:320 3956:3958",
                    (38505, [304, 319, 320], [3956, 3957, 3958]),
                ),
                "Done",
            ),
            UntaggedStatus(
                "OK",
                ResponseCode("COPYUID", "432432 42:43 1:2", (432432, [42, 43], [1, 2])),
                "Moved UIDs.",
            ),
        ],
    ),
    (
        "codes-without-value",
        b"A1 NO [TRYCREATE] Mailbox doesn't exist: Foo\r\n"
        b"A2 NO [OVERQUOTA] Quota exceeded (mailbox for user is full)\r\n"
        b"A3 NO [LIMIT] At maximum\r\nA4 NO [TOOBIG] Message too large.\r\n"
        b"A5 NO [UNAVAILABLE] Temporary failure\r\nA6 NO [INUSE] Mailbox in use\r\n"
        b"A7 OK [READ-ONLY] Examine completed\r\nA8 NO [NONEXISTENT] Unknown Mailbox: x\r\n"
        b"A9 NO [SERVERBUG] Internal error occurred. Refer to server log for more information.\r\n",
        [
            Tagged("A1", "NO", ResponseCode("TRYCREATE"), "Mailbox doesn't exist: Foo"),
            Tagged(
                "A2", "NO", ResponseCode("OVERQUOTA"), "Quota exceeded (mailbox for user is full)"
            ),
            Tagged("A3", "NO", ResponseCode("LIMIT"), "At maximum"),
            Tagged("A4", "NO", ResponseCode("TOOBIG"), "Message too large."),
            Tagged("A5", "NO", ResponseCode("UNAVAILABLE"), "Temporary failure"),
            Tagged("A6", "NO", ResponseCode("INUSE"), "Mailbox in use"),
            Tagged("A7", "OK", ResponseCode("READ-ONLY"), "Examine completed"),
            Tagged("A8", "NO", ResponseCode("NONEXISTENT"), "Unknown Mailbox: x"),
            Tagged(
                "A9",
                "NO",
                ResponseCode("SERVERBUG"),
                "Internal error occurred. Refer to server log for more information.",
            ),
        ],
    ),
    (
        "unknown-and-malformed-codes",
        b"* OK [X-FOO bar baz] hi\r\nA1 BAD [BADCHARSET (UTF-8 US-ASCII)] nope\r\n"
        b"* OK [UIDNEXT soon] odd\r\n* NO [COPYUID 1 1:3 5] uneven\r\n",
        [
            UntaggedStatus("OK", ResponseCode("X-FOO", "bar baz"), "hi"),
            Tagged("A1", "BAD", ResponseCode("BADCHARSET", "(UTF-8 US-ASCII)"), "nope"),
            UntaggedStatus("OK", ResponseCode("UIDNEXT", "soon"), "odd"),
            UntaggedStatus("NO", ResponseCode("COPYUID", "1 1:3 5"), "uneven"),
        ],
    ),
    (
        "lenient-status-lines",
        b"a2 ok done\r\n* ok [read-write]\r\nA3 OK[READ-ONLY]Done\r\nA4 OK\r\n"
        b"* OK [unclosed bracket text\r\nA5 NO [] empty\r\n* NO see {5}\r\n",
        [
            Tagged("a2", "OK", None, "done"),
            UntaggedStatus("OK", ResponseCode("READ-WRITE"), ""),
            Tagged("A3", "OK", ResponseCode("READ-ONLY"), "Done"),
            Tagged("A4", "OK", None, ""),
            UntaggedStatus("OK", None, "[unclosed bracket text"),
            Tagged("A5", "NO", None, "[] empty"),
            UntaggedStatus("NO", None, "see {5}"),
        ],
    ),
    (
        "eight-bit-text",
        b"* OK Willkommen \xc3\xbcberall \xff\r\n",
        [UntaggedStatus("OK", None, "Willkommen überall \udcff")],
    ),
    ("bare-lf", b"* 3 EXISTS\nA1 OK done\n", [Exists(3), Tagged("A1", "OK", None, "done")]),
    # -- continuations -----------------------------------------------------------------
    (
        "continuations",
        b"+ Ready for literal data\r\n+\r\n+ \r\n+ idling\r\n"
        b"+ YGgGCSqGSIb3EgECAgIBAAD/////6jcyG4GE3KkTzBeBiVHeceP2CWY0SR0fAQAgAAQEBAQ=\r\n",
        [
            Continuation("Ready for literal data"),
            Continuation(""),
            Continuation(""),
            Continuation("idling"),
            Continuation(
                "YGgGCSqGSIb3EgECAgIBAAD/////6jcyG4GE3KkTzBeBiVHeceP2CWY0SR0fAQAgAAQEBAQ="
            ),
        ],
    ),
]

CASES = STATUS_CASES + DATA_CASES

#: Inputs that are not IMAP; each must raise ProtocolError however it is chunked.
MALFORMED: list[tuple[str, bytes]] = [
    ("http", b"HTTP/1.1 400 Bad Request\r\n"),
    ("tag-without-status", b"A1 FOO bar\r\n"),
    ("tagged-bye", b"A1 BYE no\r\n"),
    ("empty-line", b"\r\n"),
    ("literal-first", b"{5}\r\nhello\r\n"),
    ("absurd-literal", b"* 1 FETCH (BODY[] {99999999999999999999999}\r\n"),
    ("nul-tag", b"\x00\x01 OK\r\n"),
]

#: Untagged responses whose lines and literals are whole but whose insides cannot be
#: read: each is skipped as ``Unreadable`` and the responses after it are read.
UNREADABLE: list[tuple[str, bytes]] = [
    ("star-only", b"* \r\n"),
    ("exists-extra", b"* 3 EXISTS extra\r\n"),
    ("fetch-uid-missing", b"* 12 FETCH (UID)\r\n"),
    ("fetch-unbalanced", b"* 1 FETCH (X (((\r\n"),
    ("fetch-unterminated-quote", b'* 1 FETCH (BODY[] "abc)\r\n'),
    ("fetch-literal-mid-line", b"* 1 FETCH (BODY[] {3} UID 1)\r\n"),
    ("fetch-bad-section", b"* 1 FETCH (BODY[1 {2}\r\nab)\r\n"),
    ("fetch-trailing", b"* 1 FETCH (UID 1) junk\r\n"),
    ("list-unclosed-attributes", b'* LIST (\\Noselect "/" foo\r\n'),
    ("status-without-list", b"* STATUS foo MESSAGES 1\r\n"),
    ("search-word", b"* SEARCH 1 two\r\n"),
    ("search-huge-number", b"* SEARCH 123456789012345678901234567890\r\n"),
    ("esearch-star", b"* ESEARCH ALL 1:*\r\n"),
    ("namespace-short", b'* NAMESPACE (("" "/"))\r\n'),
]
