"""Message and mailbox data the parser must read: FETCH, SEARCH, LIST, NAMESPACE, STATUS..."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from mailmover.imap.proto.responses import (
    ESearch,
    Exists,
    Expunge,
    Fetch,
    Flags,
    ListMailbox,
    MailboxStatus,
    Namespace,
    NamespaceEntry,
    Recent,
    Response,
    Search,
    Tagged,
    UntaggedOther,
)

MESSAGE = (
    b"Return-Path: <a@example.org>\r\n"
    b"Message-ID: <1@example.org>\r\n"
    b"Subject: braces {5} and ) and * 1 FETCH\r\n"
    b"\r\n"
    b"A1 OK not a response\r\n"
    b"\xe9t\xe9 \x00 8-bit\r\n"
)
BINARY = bytes(range(256))
HEADER_FIELDS = b"Message-ID: <1@example.org>\r\n\r\n"
PDT = timezone(timedelta(hours=-7))

PARTIAL = b"Subject: x\r\n\r\n" + b"a" * 100 + b"\r\n"
RFC3501_FETCH = (
    b'* 12 FETCH (FLAGS (\\Seen) INTERNALDATE "17-Jul-1996 02:44:25 -0700" '
    b'RFC822.SIZE 4286 ENVELOPE ("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)" '
    b'"IMAP4rev1 WG mtg summary and minutes" (("Terry Gray" NIL "gray" "cac.washington.edu")) '
    b'(("Terry Gray" NIL "gray" "cac.washington.edu")) '
    b'(("Terry Gray" NIL "gray" "cac.washington.edu")) '
    b'((NIL NIL "imap" "cac.washington.edu")) ((NIL NIL "minutes" "CNRI.Reston.VA.US")'
    b'("John Klensin" NIL "KLENSIN" "MIT.EDU")) NIL NIL '
    b'"<B27397-0100000@cac.washington.edu>") '
    b'BODY ("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 3028 92))\r\n'
)

# A nested multipart BODYSTRUCTURE with NIL, a literal and an empty list in it.
BODYSTRUCTURE = (
    b'* 3 FETCH (UID 9 BODYSTRUCTURE ((("TEXT" "PLAIN" ("CHARSET" "UTF-8") NIL NIL '
    b'"QUOTED-PRINTABLE" 120 4 NIL NIL NIL NIL)("TEXT" "HTML" ("CHARSET" "UTF-8") NIL NIL '
    b'"7BIT" 300 8 NIL NIL NIL NIL) '
    b'"ALTERNATIVE" ("BOUNDARY" "b1") NIL NIL NIL)("APPLICATION" "PDF" ("NAME" {9}\r\nfile).pdf) '
    b'"<id@x>" NIL "BASE64" 5000 NIL ("ATTACHMENT" ("FILENAME" "a.pdf")) NIL NIL) "MIXED" '
    b'("BOUNDARY" "b0") NIL () NIL) FLAGS ())\r\n'
)


DATA_CASES: list[tuple[str, bytes, list[Response]]] = [
    # -- mailbox size and message data -------------------------------------------------
    (
        "expunge-exists",
        b"* 3 EXPUNGE\r\n* 0 EXISTS\r\n* 0 RECENT\r\n",
        [Expunge(3), Exists(0), Recent(0)],
    ),
    (
        "rfc3501-fetch-envelope",
        RFC3501_FETCH,
        [
            Fetch(
                seq=12,
                flags=("\\Seen",),
                internaldate=datetime(1996, 7, 17, 2, 44, 25, tzinfo=PDT),
                size=4286,
            )
        ],
    ),
    (
        "dovecot-fetch-body",
        b'* 1 FETCH (UID 1 RFC822.SIZE %d FLAGS (\\Seen $Forwarded) INTERNALDATE " 9-Nov-2025 '
        b'20:30:01 +0000" BODY[] {%d}\r\n%s)\r\n' % (len(MESSAGE), len(MESSAGE), MESSAGE),
        [
            Fetch(
                seq=1,
                uid=1,
                size=len(MESSAGE),
                flags=("\\Seen", "$Forwarded"),
                internaldate=datetime(2025, 11, 9, 20, 30, 1, tzinfo=UTC),
                body={"": MESSAGE},
            )
        ],
    ),
    (
        "fetch-sections",
        b"* 2 FETCH (UID 8 BODY[HEADER.FIELDS (MESSAGE-ID DATE)] {%d}\r\n%s"
        b' body[1.mime] "Content-Type: text/plain" BODY[1]<0> {4}\r\nbody'
        b' BODY[2] NIL RFC822.HEADER {2}\r\n\r\n RFC822.TEXT "x" MODSEQ (12121231000))\r\n'
        % (len(HEADER_FIELDS), HEADER_FIELDS),
        [
            Fetch(
                seq=2,
                uid=8,
                modseq=12121231000,
                body={
                    "HEADER.FIELDS (MESSAGE-ID DATE)": HEADER_FIELDS,
                    "1.MIME": b"Content-Type: text/plain",
                    "1": b"body",
                    "2": b"",
                    "HEADER": b"\r\n",
                    "TEXT": b"x",
                },
                origins={"1": 0},
            )
        ],
    ),
    (
        # Dovecot 2.3 answering UID FETCH 1 (UID RFC822.SIZE BODY.PEEK[]<0.20>), then
        # <100.200> (16 bytes left) and <5000.10> (past the end) in one pipeline.
        "dovecot-fetch-partial",
        b"* 1 FETCH (UID 1 RFC822.SIZE 116 BODY[]<0> {20}\r\n%s)\r\nA7 OK Fetch completed.\r\n"
        b"* 1 FETCH (UID 1 BODY[]<100> {16}\r\n%s)\r\n"
        b'* 1 FETCH (UID 1 BODY[]<5000> {0}\r\n)\r\n* 1 FETCH (UID 1 BODY[]<4> "")\r\n'
        b"A9 OK Fetch completed.\r\n" % (PARTIAL[:20], PARTIAL[100:]),
        [
            Fetch(seq=1, uid=1, size=116, body={"": PARTIAL[:20]}, origins={"": 0}),
            Tagged("A7", "OK", None, "Fetch completed."),
            Fetch(seq=1, uid=1, body={"": PARTIAL[100:]}, origins={"": 100}),
            Fetch(seq=1, uid=1, body={"": b""}, origins={"": 5000}),
            Fetch(seq=1, uid=1, body={"": b""}, origins={"": 4}),
            Tagged("A9", "OK", None, "Fetch completed."),
        ],
    ),
    (
        "fetch-rfc822-binary",
        b"* 4 FETCH (RFC822 {%d}\r\n%s BINARY[] ~{256}\r\n%s BINARY.SIZE[1] 256 UID 11)\r\n"
        % (len(MESSAGE), MESSAGE, BINARY),
        [Fetch(seq=4, uid=11, body={"": MESSAGE}, binary={"": BINARY})],
    ),
    (
        "fetch-modseq-flags",
        b"* 2 FETCH (UID 8 MODSEQ (12121231000) FLAGS (\\Deleted))\r\n"
        b"* 5 FETCH (FLAGS ())\r\n* 6 fetch (uid 44 flags (\\Seen \\Recent))\r\n",
        [
            Fetch(seq=2, uid=8, modseq=12121231000, flags=("\\Deleted",)),
            Fetch(seq=5, flags=()),
            Fetch(seq=6, uid=44, flags=("\\Seen", "\\Recent")),
        ],
    ),
    (
        "gmail-fetch",
        b"* 1 FETCH (X-GM-THRID 1278455344230334865 X-GM-MSGID 1278455344230334866 "
        b'X-GM-LABELS (\\Inbox \\Sent Important "Muy Importante" "\\\\Important" {5}\r\nfoo b'
        b' "&AOk-t&AOk-" "[Gmail]/Sent Mail") UID 4 RFC822.SIZE 12)\r\n'
        b"* 2 FETCH (X-GM-LABELS () UID 5)\r\n",
        [
            Fetch(
                seq=1,
                uid=4,
                size=12,
                gm_thrid=1278455344230334865,
                gm_msgid=1278455344230334866,
                gm_labels=(
                    "\\Inbox",
                    "\\Sent",
                    "Important",
                    "Muy Importante",
                    "\\Important",
                    "foo b",
                    "été",
                    "[Gmail]/Sent Mail",
                ),
            ),
            Fetch(seq=2, uid=5, gm_labels=()),
        ],
    ),
    ("fetch-bodystructure", BODYSTRUCTURE, [Fetch(seq=3, uid=9, flags=())]),
    (
        "fetch-envelope-literal-and-unknown-items",
        b'* 7 FETCH (ENVELOPE (NIL {11}\r\nsubj (with) NIL NIL NIL NIL NIL NIL NIL "<m@x>") '
        b'EMAILID (M6d99ac3275bb4e) THREADID NIL SAVEDATE "1-Jan-2024 00:00:00 +0000" '
        b'PREVIEW "hi" UID 3 INTERNALDATE "31-Feb-2020 00:00:00 +0000")\r\n',
        [Fetch(seq=7, uid=3)],
    ),
    (
        # INTERNALDATE is read by imap.proto.dates (the one date-time parser): a zone
        # with 60 minutes or more is no date; any case of month name is.
        "fetch-internaldate-zone-and-month-case",
        b'* 8 FETCH (UID 4 INTERNALDATE "01-Jan-2020 00:00:00 +0060")\r\n'
        b'* 9 FETCH (UID 5 INTERNALDATE "01-jAN-2020 10:00:00 +0530")\r\n',
        [
            Fetch(seq=8, uid=4),
            Fetch(
                seq=9,
                uid=5,
                internaldate=datetime(
                    2020, 1, 1, 10, 0, tzinfo=timezone(timedelta(hours=5, minutes=30))
                ),
            ),
        ],
    ),
    # -- searches ----------------------------------------------------------------------
    (
        "search",
        b"* SEARCH 2 84 882\r\n* SEARCH\r\n* SEARCH \r\n"
        b"* SEARCH 2 5 6 7 11 12 18 19 20 23 (MODSEQ 917162500)\r\n",
        [
            Search((2, 84, 882)),
            Search(()),
            Search(()),
            Search((2, 5, 6, 7, 11, 12, 18, 19, 20, 23), 917162500),
        ],
    ),
    (
        "rfc4731-esearch",
        b'* ESEARCH (TAG "A282") MIN 2 COUNT 3\r\n* ESEARCH (TAG "A283") ALL 2,10:11\r\n'
        b'* ESEARCH (TAG "A285") UID MIN 7 MAX 3800\r\n* ESEARCH (TAG "A287") UID\r\n'
        b'* ESEARCH (TAG "a") ALL 1:3,5 MODSEQ 1236\r\n* ESEARCH\r\n'
        b'* ESEARCH (TAG "p" MAILBOX "INBOX") UID PARTIAL (1:2 7,9) COUNT 2\r\n',
        [
            ESearch("A282", False, (), {"MIN": 2, "COUNT": 3}),
            ESearch("A283", False, (2, 10, 11), {}),
            ESearch("A285", True, (), {"MIN": 7, "MAX": 3800}),
            ESearch("A287", True, (), {}),
            ESearch("a", False, (1, 2, 3, 5), {"MODSEQ": 1236}),
            ESearch(None, False, (), {}),
            ESearch("p", True, (), {"COUNT": 2}),
        ],
    ),
    # -- mailboxes ---------------------------------------------------------------------
    (
        "rfc3501-list",
        b'* LIST (\\Noselect) "/" ~/Mail/foo\r\n* LIST () "." #news.comp.mail.misc\r\n'
        b'* LIST (\\Noselect) NIL ""\r\n* LSUB () "." #news.comp.mail.misc\r\n',
        [
            ListMailbox("LIST", frozenset({"\\Noselect"}), "/", "~/Mail/foo"),
            ListMailbox("LIST", frozenset(), ".", "#news.comp.mail.misc"),
            ListMailbox("LIST", frozenset({"\\Noselect"}), None, ""),
            ListMailbox("LSUB", frozenset(), ".", "#news.comp.mail.misc"),
        ],
    ),
    (
        "gmail-dovecot-list",
        b'* LIST (\\HasNoChildren \\Trash) "/" "[Gmail]/Trash"\r\n'
        b'* LIST (\\HasChildren) "." INBOX\r\n'
        b'* LIST (\\HasNoChildren) "." "INBOX.Entw&APw-rfe"\r\n'
        b'* LIST () "/" {7}\r\nfoo bar\r\n'
        b'* LIST () "\\\\" "a\\\\b \\"c\\""\r\n'
        b'* LIST (\\Subscribed) "/" "Foo" ("CHILDINFO" ("SUBSCRIBED"))\r\n',
        [
            ListMailbox("LIST", frozenset({"\\HasNoChildren", "\\Trash"}), "/", "[Gmail]/Trash"),
            ListMailbox("LIST", frozenset({"\\HasChildren"}), ".", "INBOX"),
            ListMailbox("LIST", frozenset({"\\HasNoChildren"}), ".", "INBOX.Entwürfe"),
            ListMailbox("LIST", frozenset(), "/", "foo bar"),
            ListMailbox("LIST", frozenset(), "\\", 'a\\b "c"'),
            ListMailbox("LIST", frozenset({"\\Subscribed"}), "/", "Foo"),
        ],
    ),
    (
        "rfc2342-namespace",
        b'* NAMESPACE (("" "/")) NIL NIL\r\n* NAMESPACE NIL NIL (("" "."))\r\n'
        b'* NAMESPACE (("INBOX." ".")) NIL  NIL\r\n'
        b'* NAMESPACE (("" "/")("#mh/" "/" "X-PARAM" ("FLAG1" "FLAG2"))) (("~" "/")) '
        b'(("#shared/" "/")("#public/" "/")("#ftp/" "/")("#news." "."))\r\n',
        [
            Namespace((NamespaceEntry("", "/"),), (), ()),
            Namespace((), (), (NamespaceEntry("", "."),)),
            Namespace((NamespaceEntry("INBOX.", "."),), (), ()),
            Namespace(
                (NamespaceEntry("", "/"), NamespaceEntry("#mh/", "/")),
                (NamespaceEntry("~", "/"),),
                (
                    NamespaceEntry("#shared/", "/"),
                    NamespaceEntry("#public/", "/"),
                    NamespaceEntry("#ftp/", "/"),
                    NamespaceEntry("#news.", "."),
                ),
            ),
        ],
    ),
    (
        "status",
        b"* STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292)\r\n"
        b'* STATUS "[Gmail]/All Mail" (MESSAGES 17 unseen 16 HIGHESTMODSEQ 1234 '
        b"APPENDLIMIT NIL)\r\n"
        b"* STATUS {5}\r\nBr\xc3\xbcd(UIDVALIDITY 7)\r\n",
        [
            MailboxStatus("blurdybloop", {"MESSAGES": 231, "UIDNEXT": 44292}),
            MailboxStatus(
                "[Gmail]/All Mail", {"MESSAGES": 17, "UNSEEN": 16, "HIGHESTMODSEQ": 1234}
            ),
            MailboxStatus("Brüd", {"UIDVALIDITY": 7}),
        ],
    ),
    (
        "gmail-flags",
        b"* FLAGS (\\Answered \\Flagged \\Draft \\Deleted \\Seen $NotPhishing $Phishing)\r\n",
        [
            Flags(
                (
                    "\\Answered",
                    "\\Flagged",
                    "\\Draft",
                    "\\Deleted",
                    "\\Seen",
                    "$NotPhishing",
                    "$Phishing",
                )
            )
        ],
    ),
    # -- everything else ---------------------------------------------------------------
    (
        "untagged-other",
        b'* ID ("name" "Dovecot")\r\n* QUOTA "" (STORAGE 10 512)\r\n'
        b"* VANISHED (EARLIER) 41,43:116,118\r\n* 5 XFOO bar\r\n"
        b'* XLIST (\\HasNoChildren \\Inbox) "/" "Inbox"\r\n'
        b'* METADATA "INBOX" (/private/comment {5}\r\nhello)\r\n* ID NIL\r\n* NOOP\r\n',
        [
            UntaggedOther("ID", None, b'("name" "Dovecot")'),
            UntaggedOther("QUOTA", None, b'"" (STORAGE 10 512)'),
            UntaggedOther("VANISHED", None, b"(EARLIER) 41,43:116,118"),
            UntaggedOther("XFOO", 5, b"bar"),
            UntaggedOther("XLIST", None, b'(\\HasNoChildren \\Inbox) "/" "Inbox"'),
            UntaggedOther("METADATA", None, b'"INBOX" (/private/comment {5}\r\nhello)'),
            UntaggedOther("ID", None, b"NIL"),
            UntaggedOther("NOOP", None, b""),
        ],
    ),
]
