"""Folder names the destination takes: a deterministic ladder of substitutes.

When the destination refuses to CREATE a folder name, or cannot open a name it
has just created, the name climbs this ladder, one rung per round of pipelined
CREATEs, skipping any rung that gives a name already tried, one another folder
goes to, or one holding a character the destination is known to refuse:

0. the planned name;
1. the characters this destination is known to refuse replaced by ``_`` (by
   ``-`` when ``_`` itself is refused). They are learned from the server's
   words where it names them (Dovecot's ``Character not allowed in mailbox
   name: '.'``), and from names a bare ``NO`` refused until rung 2 took out
   their punctuation (the characters rung 2 replaced, less those seen in names
   the server took);
2. every character outside the safe set (letters, digits, space, ``-``, ``_``)
   replaced, runs of spaces made one, leading and trailing spaces removed
   (Gmail refuses excess whitespace);
3. an ASCII form: accents taken off, any other non-ASCII character replaced,
   cut to 60 characters;
4. the ASCII form with ``-`` and six hex digits of the SHA-256 of the planned
   name appended to the last level.

Rungs change only the levels of the name below the nearest parent folder that
is also planned: a child goes under its parent's final name, renamed or not.
What one name teaches (a refused character) applies to every later candidate
of the run. A folder that no rung gives a name for is not copied, with the
server's words.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from mailmover.engine.folders import FolderPlan, Side
from mailmover.errors import CommandFailed
from mailmover.imap.client import IMAPClient
from mailmover.imap.proto.commands import Atom, Mailbox, ParenList

LAST_RUNG = 4
ASCII_LENGTH = 60
_SAFE_PUNCTUATION = frozenset(" -_")
# Dovecot: "Character not allowed in mailbox name: '.'"; others name the character alike.
_NAMED_CHARACTER = re.compile(r"char\w*\b[^'\"]*['\"](.)['\"]", re.IGNORECASE)


def refused_characters(words: str) -> frozenset[str]:
    """The characters a refusal names as not allowed (empty when it names none)."""
    return frozenset(_NAMED_CHARACTER.findall(words))


def substitute_for(refused: Iterable[str]) -> str:
    """The character put in place of refused ones: ``_``, or ``-`` if ``_`` is refused."""
    return "-" if "_" in set(refused) else "_"


def _safe(char: str) -> bool:
    return char.isalnum() or char in _SAFE_PUNCTUATION


def rung_part(rung: int, part: str, refused: frozenset[str]) -> str:
    """One level of a name (no hierarchy separator in it) on ``rung`` 0 to 3."""
    sub = substitute_for(refused)
    if rung == 0:
        return part
    if rung == 1:
        return "".join(sub if c in refused else c for c in part)
    if rung >= 3:
        part = unicodedata.normalize("NFKD", part)
        part = "".join(c for c in part if not unicodedata.combining(c))
        part = "".join(c if c.isascii() else sub for c in part)
    text = re.sub(" +", " ", "".join(c if _safe(c) else sub for c in part)).strip()
    if rung >= 3:
        text = text[:ASCII_LENGTH].rstrip()
    return text or sub


def short_hash(name: str) -> str:
    """Six hex digits naming ``name`` (the planned destination name)."""
    return hashlib.sha256(name.encode("utf-8")).hexdigest()[:6]


def rung_parts(
    rung: int,
    parts: Sequence[str],
    refused: frozenset[str],
    *,
    planned: str,
) -> tuple[str, ...]:
    """The levels ``parts`` become on ``rung`` (0 to ``LAST_RUNG``)."""
    out = [rung_part(min(rung, 3), part, refused) for part in parts]
    if rung >= LAST_RUNG and out:
        out[-1] = f"{out[-1]}-{short_hash(planned)}"
    return tuple(out)


def learn_from_rung2(tried: Iterable[str], taken: str, known_good: Iterable[str]) -> frozenset[str]:
    """Characters to suspect after a bare refusal of ``tried`` names, when ``taken`` (a
    rung-2 form) was accepted: those the tried names held and ``taken`` lacks, less
    any that appear in names the server took (``known_good``)."""
    good = set(taken).union(*map(set, known_good))
    suspects: set[str] = set()
    for name in tried:
        suspects |= {c for c in name if not _safe(c)}
    return frozenset(suspects - good)


@dataclass
class Naming:
    """One folder's way up the ladder."""

    key: int  # its place among the distinct planned names
    planned: str  # the name the plan gave
    parts: tuple[str, ...]  # its levels below the destination's prefix
    rung: int = 0
    name: str | None = None  # the candidate in flight, or the one that worked
    settled: bool = False
    failed: str | None = None  # the server's words when no rung worked
    tried: list[str] = field(default_factory=list)
    words: list[str] = field(default_factory=list)  # the server's refusals, in order


class Ladder:
    """The destination names of a run's folders, worked out round by round.

    ``names`` are the planned destination names; those in ``existing`` need no
    CREATE. ``next_round`` gives the folders whose candidate is to be created
    now, ``answer`` takes what the server said of each, and ``outcome`` is the
    result once a round comes back empty.
    """

    def __init__(
        self,
        names: Sequence[str],
        existing: Iterable[str],
        prefix: str,
        delimiter: str,
        refused: frozenset[str] = frozenset(),
        parents: Mapping[str, str] | None = None,
    ) -> None:
        self.prefix, self.delimiter = prefix, delimiter
        self.parents = dict(parents or {})  # planned name → its parent's, where not by name
        self.existing = set(existing)
        self.refused = refused
        self.good: set[str] = set(self.existing)  # names the server holds: their characters work
        self.rounds = 0
        self.namings: dict[str, Naming] = {}
        self._claims: dict[str, set[int]] = {}  # casefolded name → folders that use it
        for key, planned in enumerate(dict.fromkeys(names)):
            naming = Naming(key, planned, self._split(planned), name=planned)
            naming.settled = planned in self.existing or planned.upper() == "INBOX"
            self.namings[planned] = naming
            self._claim(naming, planned)
        self._by_parts = {n.parts: n for n in self.namings.values()}

    # -- the names ---------------------------------------------------------------------

    def _split(self, name: str) -> tuple[str, ...]:
        if self.prefix and name.startswith(self.prefix):
            name = name[len(self.prefix) :]
        return tuple(name.split(self.delimiter))

    def _join(self, naming: Naming, parts: Sequence[str]) -> str:
        lead = self.prefix if self.prefix and naming.planned.startswith(self.prefix) else ""
        return lead + self.delimiter.join(parts)

    def _parent(self, naming: Naming) -> Naming | None:
        """The nearest planned folder above ``naming``, if any."""
        if naming.planned in self.parents:
            return self.namings[self.parents[naming.planned]]
        for k in range(len(naming.parts) - 1, 0, -1):
            found = self._by_parts.get(naming.parts[:k])
            if found is not None:
                return found
        return None

    def candidate(self, naming: Naming, rung: int) -> str:
        """``naming``'s name on ``rung``, under its parent's current name."""
        return self._candidate(naming, rung)[0]

    def _candidate(self, naming: Naming, rung: int) -> tuple[str, bool]:
        """The candidate, and whether its own levels hold a character known to be refused."""
        parent = self._parent(naming)
        if parent is not None and parent.failed is None and parent.name is not None:
            base, rest = self._split(parent.name), naming.parts[len(parent.parts) :]
        else:
            base, rest = (), naming.parts
        own = rung_parts(rung, rest, self.refused, planned=naming.planned)
        doomed = any(c in self.refused for part in own for c in part)
        return self._join(naming, base + own), doomed

    def _claim(self, naming: Naming, name: str) -> None:
        self._claims.setdefault(name.casefold(), set()).add(naming.key)

    def _taken(self, name: str, naming: Naming) -> bool:
        """Whether another folder is planned under ``name``, or has tried it (case ignored)."""
        return bool(self._claims.get(name.casefold(), set()) - {naming.key})

    # -- the rounds --------------------------------------------------------------------

    def next_round(self) -> list[Naming]:
        """The folders to CREATE now, each with its candidate in ``name``."""
        self.rounds += 1
        first = self.rounds == 1  # every name at once (under its parent's): most work
        if not first:
            self._reparent()
        batch = []
        for naming in self.namings.values():
            if naming.settled or naming.failed is not None or (not first and self._waits(naming)):
                continue
            for rung in range(LAST_RUNG + 1):
                name, doomed = self._candidate(naming, rung)
                if first and rung == 0 and not doomed:
                    naming.name = name  # the planned name, under its parent's current one
                    self._claim(naming, name)
                    break
                if not doomed and name not in naming.tried and not self._taken(name, naming):
                    naming.rung, naming.name = rung, name
                    self._claim(naming, name)
                    break
            else:
                naming.failed = self._failure(naming)
                continue
            if name in self.existing:
                naming.settled = True
            else:
                batch.append(naming)
        return batch

    def _waits(self, naming: Naming) -> bool:
        """An unsettled parent decides first, so that its children go under its final name."""
        parent = self._parent(naming)
        while parent is not None:
            if not parent.settled and parent.failed is None:
                return True
            parent = self._parent(parent)
        return False

    def _reparent(self) -> None:
        """A child taken under a parent name that was then refused goes again under the new one."""
        for naming in self.namings.values():
            parent = self._parent(naming)
            if not naming.settled or parent is None or parent.failed is not None:
                continue
            assert naming.name is not None and parent.name is not None
            if self._split(naming.name)[: len(parent.parts)] != self._split(parent.name):
                naming.settled = False
                naming.tried.append(naming.name)

    def answer(self, naming: Naming, words: str | None, *, final: bool = False) -> None:
        """What the server said of ``naming``'s candidate: None when it took it."""
        assert naming.name is not None
        if words is None:
            naming.settled = True
            self.good.add(naming.name)
            if naming.rung == 2 and not any(refused_characters(w) for w in naming.words):
                # A bare NO until rung 2 took the punctuation out: suspect what it took.
                self.refused |= learn_from_rung2(naming.tried, naming.name, self.good)
            return
        naming.tried.append(naming.name)
        naming.words.append(words)
        self.refused |= refused_characters(words)
        if final:
            naming.failed = self._failure(naming)

    def _failure(self, naming: Naming) -> str:
        tried = ", ".join(repr(t) for t in naming.tried)
        first = naming.words[0] if naming.words else "refused"
        return f"the destination refused every name tried ({tried}): {first}"

    def outcome(self) -> dict[str, Naming]:
        """Every planned name and what became of it."""
        return dict(self.namings)

    def note(self, naming: Naming) -> str | None:
        """Why the folder's name differs from the planned one (None when it does not)."""
        if naming.failed is not None or naming.name == naming.planned:
            return None
        if naming.words:
            return f"renamed: the destination refused {naming.planned!r} ({naming.words[0]})"
        return "renamed: under its parent folder's new name"


def find_renamed(
    names: Sequence[str], existing: Iterable[str], prefix: str, delimiter: str
) -> dict[str, str]:
    """Where a copy would have put each of ``names`` that the destination lacks, judging
    by the folders it has: the first rung of the ladder that names one of them.

    Characters found in none of the destination's names are taken as refused.
    Names no rung finds are left out.
    """
    have = set(existing)
    seen = set("".join(have))
    refused = frozenset(c for c in "".join(names) if not _safe(c) and c not in seen)
    ladder = Ladder(names, have, prefix, delimiter, refused)
    while batch := ladder.next_round():
        for naming in batch:  # not there: the next rung
            ladder.answer(naming, "missing")
    return {
        planned: naming.name
        for planned, naming in ladder.outcome().items()
        if naming.settled and naming.name is not None and naming.name != planned
    }


# -- on the wire ---------------------------------------------------------------------------

#: Refusals that no other name would avoid.
_FINAL_CODES = frozenset({"OVERQUOTA"})
# Dovecot ends its replies with its timings: "(0.001 + 0.000 secs)."
_TIMING = re.compile(r" \([0-9.]+(?: \+ [0-9.]+)* secs\)\.?$")
_NOSELECT = frozenset({"\\noselect", "\\nonexistent"})


def _refusal(outcome: object, *, create: bool) -> tuple[str | None, bool]:
    """(the server's words, whether they are final) for a command's outcome; OK is (None, _).

    A failure a retry can help (a cut link, a busy server) is raised: it is not about the name.
    """
    if not isinstance(outcome, BaseException):
        return None, False
    if not isinstance(outcome, CommandFailed) or outcome.retryable:
        raise outcome
    # Exchange says "NO Mailbox already exists." without [ALREADYEXISTS]
    if create and (outcome.code == "ALREADYEXISTS" or "already exists" in outcome.message.lower()):
        return None, False
    return _TIMING.sub("", outcome.message), outcome.code in _FINAL_CODES


def _parents(plans: Sequence[FolderPlan], delimiter: str) -> dict[str, str]:
    """Each planned name → the planned name of its parent folder on the source, where the
    two are nested alike on the destination (not moved apart by ``--map``)."""
    by_path = {p.path: p for p in plans}
    out = {}
    for plan in plans:
        for k in range(len(plan.path) - 1, 0, -1):
            parent = by_path.get(plan.path[:k])
            if parent is None:
                continue
            below = plan.dest_name.count(delimiter) - parent.dest_name.count(delimiter)
            if below == len(plan.path) - k and parent.dest_name != plan.dest_name:
                out[plan.dest_name] = parent.dest_name
            break
    return out


async def create_folders(
    client: IMAPClient,
    plans: Sequence[FolderPlan],
    dest: Side,
    delimiter: str,
    later: Iterable[str] = (),
) -> list[FolderPlan]:
    """Create the folders the destination lacks, renamed where it refuses a name.

    Each round is one pipelined batch of CREATEs, each followed by a STATUS that
    shows the new name can be opened. The plans come back with the names that
    worked (and a note saying why they differ), or with ``refused`` set. Names
    in ``later`` are taken as there (created elsewhere): kept, never created here.
    """
    names = [p.dest_name for p in plans]
    # A parent that only holds other folders (\Noselect) is created as a folder of its own.
    usable = [m.name for m in dest.mailboxes if not {a.lower() for a in m.attributes} & _NOSELECT]
    usable += later
    ladder = Ladder(names, usable, dest.prefix, delimiter, parents=_parents(plans, delimiter))
    probe = ParenList([Atom("UIDVALIDITY")])
    while batch := ladder.next_round():
        sent = []
        for naming in batch:
            assert naming.name is not None
            mailbox = Mailbox(naming.name)
            sent.append(client.submit("CREATE", [mailbox]))
            sent.append(client.submit("STATUS", [mailbox, probe], status_mailbox=naming.name))
        outcomes = await asyncio.gather(*sent, return_exceptions=True)
        for n, naming in enumerate(batch):
            words, final = _refusal(outcomes[2 * n], create=True)
            if words is None:
                words, final = _refusal(outcomes[2 * n + 1], create=False)
            ladder.answer(naming, words, final=final)
    found = ladder.outcome()
    out = []
    for plan in plans:
        naming = found[plan.dest_name]
        if naming.failed is not None:
            out.append(replace(plan, refused=naming.failed))
            continue
        note = ladder.note(naming)
        assert naming.name is not None
        if note is not None and plan.note:
            note = f"{plan.note}; {note}"
        renamed = plan.dest_name if naming.name != plan.dest_name else None
        out.append(
            replace(
                plan,
                dest_name=naming.name,
                dest_exists=True,
                note=note or plan.note,
                renamed_from=renamed,
            )
        )
    return out
