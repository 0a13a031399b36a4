"""The ladder of substitute folder names: pure, deterministic, and driven by the server's words."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mailmover.engine.naming import (
    Ladder,
    find_renamed,
    learn_from_rung2,
    refused_characters,
    rung_part,
    rung_parts,
    short_hash,
)

DOVECOT_DOT = "CREATE refused by the server: Character not allowed in mailbox name: '.'"
BARE = "CREATE refused by the server: Invalid mailbox name"


def test_refused_characters_come_from_the_servers_words() -> None:
    assert refused_characters(DOVECOT_DOT) == {"."}
    assert refused_characters('Invalid character "&" in name') == {"&"}
    assert refused_characters(BARE) == frozenset()
    assert refused_characters("Invalid mailbox name: Begins with '~'") == frozenset()


@pytest.mark.parametrize(
    ("rung", "part", "refused", "expected"),
    [
        (0, 'v1.2 "final"', frozenset("."), 'v1.2 "final"'),
        (1, 'v1.2 "final"', frozenset("."), 'v1_2 "final"'),
        (1, "a_b.c", frozenset("._"), "a-b-c"),
        (2, 'v1.2 "final" (old)', frozenset(), "v1_2 _final_ _old_"),
        (2, "Résumé & CV", frozenset(), "Résumé _ CV"),
        (2, "~home ", frozenset(), "_home"),
        (2, "  Old   mail ", frozenset(), "Old mail"),
        (2, "...", frozenset(), "___"),
        (3, "Résumé & CV", frozenset(), "Resume _ CV"),
        (3, "日本", frozenset(), "__"),
        (3, "x" * 80, frozenset(), "x" * 60),
    ],
)
def test_each_rung(rung: int, part: str, refused: frozenset[str], expected: str) -> None:
    assert rung_part(rung, part, refused) == expected


def test_the_last_rung_adds_a_hash_of_the_planned_name_to_the_last_level_only() -> None:
    parts = rung_parts(4, ("Clients", "Zoë's"), frozenset(), planned="Clients/Zoë's")
    assert parts == ("Clients", f"Zoe_s-{short_hash('Clients/Zoë' + chr(39) + 's')}")
    assert len(short_hash("x")) == 6
    assert short_hash("Clients/a") != short_hash("Clients/b")


def test_learning_from_a_bare_refusal_spares_characters_seen_in_accepted_names() -> None:
    suspects = learn_from_rung2(['Q&A "draft"'], "Q_A _draft_", ["Q&A notes"])
    assert suspects == {'"'}


Server = Callable[[str], str | None]


def run(ladder: Ladder, server: Server) -> list[list[str]]:
    """Drive ``ladder`` against ``server`` (name → refusal words or None); the rounds sent."""
    rounds = []
    while batch := ladder.next_round():
        rounds.append([n.name or "" for n in batch])
        for naming in batch:
            assert naming.name is not None
            ladder.answer(naming, server(naming.name))
        assert len(rounds) < 20
    return rounds


def dovecot_dot(name: str) -> str | None:
    return DOVECOT_DOT if "." in name else None


def cyrus_quote(name: str) -> str | None:
    return BARE if '"' in name else None


def test_dovecot_dot_parent_and_children_in_two_rounds() -> None:
    names = ["INBOX", "Projects", "Projects/v1.2", "Projects/v1.2/notes", "a.b/c", "Plain"]
    ladder = Ladder(names, ["INBOX"], "", "/")
    rounds = run(ladder, dovecot_dot)
    out = {k: n.name for k, n in ladder.outcome().items()}
    assert out == {
        "INBOX": "INBOX",
        "Projects": "Projects",
        "Projects/v1.2": "Projects/v1_2",
        "Projects/v1.2/notes": "Projects/v1_2/notes",
        "a.b/c": "a_b/c",
        "Plain": "Plain",
    }
    assert rounds[0] == names[1:]
    # The dot, learned from the words, is replaced at once: one more round for parent and
    # unrelated names, and the child follows its parent the round after.
    assert rounds[1:] == [["Projects/v1_2", "a_b/c"], ["Projects/v1_2/notes"]]
    assert ladder.refused == {"."}
    renamed = ladder.outcome()["Projects/v1.2/notes"]
    assert "Character not allowed" in (ladder.note(renamed) or "")
    assert ladder.note(ladder.outcome()["Plain"]) is None


def test_bare_refusal_climbs_to_the_safe_set_and_learns_the_quote() -> None:
    # Cyrus-like: "INBOX." prefix, "." separator.
    names = ['INBOX.Say "hi"', 'INBOX.Say "hi".Q&A', "INBOX.Q&A list", 'INBOX.x"y.z']
    ladder = Ladder(names, [], "INBOX.", ".")
    run(ladder, cyrus_quote)
    out = {k: n.name for k, n in ladder.outcome().items()}
    assert out["INBOX.Q&A list"] == "INBOX.Q&A list"
    assert out['INBOX.Say "hi"'] == "INBOX.Say _hi_"
    # The child went under its parent's new name; '&' was seen working, so only '"' is refused.
    assert out['INBOX.Say "hi".Q&A'] == "INBOX.Say _hi_.Q&A"
    assert ladder.refused == {'"'}
    assert out['INBOX.x"y.z'] == "INBOX.x_y.z"  # two levels, x"y and z; only the first changes


def test_the_same_answers_give_the_same_names() -> None:
    names = ["a.b", "a_b", "a.b/c.d", "Zoë.x", "日本.語"]

    def picky(name: str) -> str | None:
        if "." in name:
            return DOVECOT_DOT
        return BARE if not name.isascii() else None

    results = []
    for _ in range(2):
        ladder = Ladder(names, [], "", "/")
        run(ladder, picky)
        results.append({k: n.name for k, n in ladder.outcome().items()})
    assert results[0] == results[1]
    first = results[0]
    assert first["a_b"] == "a_b"
    assert first["a.b"] == f"a_b-{short_hash('a.b')}"  # a_b is another folder's name
    assert first["a.b/c.d"] == f"a_b-{short_hash('a.b')}/c_d"
    assert first["Zoë.x"] == "Zoe_x"
    assert first["日本.語"] == "____"
    assert len(set(first.values())) == len(first)


def test_a_name_no_rung_fixes_fails_alone_with_the_servers_words() -> None:
    def refuses_draft(name: str) -> str | None:
        return "CREATE refused by the server: Reserved name" if "draft" in name.lower() else None

    ladder = Ladder(["Drafts old", "Drafts old/2019", "Keep"], [], "", "/")
    run(ladder, refuses_draft)
    out = ladder.outcome()
    assert out["Drafts old"].failed is not None
    assert "Reserved name" in out["Drafts old"].failed
    assert "'Drafts old'" in out["Drafts old"].failed
    assert out["Keep"].name == "Keep" and out["Keep"].settled
    # Its child climbs the ladder on its own (and fails too: every form holds "draft").
    assert out["Drafts old/2019"].failed is not None


def test_a_child_taken_under_a_parent_name_that_failed_goes_under_the_new_one() -> None:
    # A server that refuses the parent's name only when it is a leaf.
    def odd(name: str) -> str | None:
        return "CREATE refused by the server: no" if name == "P!" else None

    ladder = Ladder(["P!", "P!/c"], [], "", "/")
    run(ladder, odd)
    out = {k: n.name for k, n in ladder.outcome().items()}
    assert out == {"P!": "P_", "P!/c": "P_/c"}


def test_existing_names_are_used_without_create() -> None:
    # A rerun without job state: the renamed folder is there already.
    ladder = Ladder(["v1.2"], ["v1_2", "INBOX"], "", "/")
    rounds = run(ladder, dovecot_dot)
    assert rounds == [["v1.2"]]
    assert ladder.outcome()["v1.2"].name == "v1_2"


def test_find_renamed_finds_what_the_ladder_made_from_the_destinations_names() -> None:
    existing = ["INBOX", "Projects", "Projects/v1_2", "Projects/v1_2/notes", 'Q&A "draft"_old']
    names = ["INBOX", "Projects", "Projects/v1.2", "Projects/v1.2/notes", 'Q&A "draft".old', "Gone"]
    found = find_renamed(names, existing, "", "/")
    assert found == {
        "Projects/v1.2": "Projects/v1_2",
        "Projects/v1.2/notes": "Projects/v1_2/notes",
        'Q&A "draft".old': 'Q&A "draft"_old',  # '.' is in no name there: refused
    }
    # Cyrus-like: the quote was refused bare, and rung 2 took out the '&' as well.
    found = find_renamed(['Q&A "draft".old'], ["Q_A _draft__old", "v1.2"], "", "/")
    assert found == {'Q&A "draft".old': "Q_A _draft__old"}


def test_a_new_child_of_a_folder_renamed_by_an_earlier_run_goes_straight_under_it() -> None:
    # The parent keeps its earlier name (now planned as such); the child is new.
    names = ["Projects/v1_2-abc123", "Projects/v1.2/2024"]
    parents = {"Projects/v1.2/2024": "Projects/v1_2-abc123"}
    ladder = Ladder(names, ["Projects/v1_2-abc123"], "", "/", parents=parents)
    rounds = run(ladder, dovecot_dot)
    assert rounds == [["Projects/v1_2-abc123/2024"]]
    assert ladder.note(ladder.outcome()["Projects/v1.2/2024"]) == (
        "renamed: under its parent folder's new name"
    )


def test_known_refused_characters_are_never_sent_again() -> None:
    ladder = Ladder(["A.1", "A.1/b.2"], [], "", "/")
    rounds = run(ladder, dovecot_dot)
    # The child waits for its parent, then goes straight to a name without '.'.
    assert rounds == [["A.1", "A.1/b.2"], ["A_1"], ["A_1/b_2"]]
