"""The flag policy (``engine.flags``): what one destination folder keeps of a message's flags."""

from __future__ import annotations

import pytest

from mailmover.engine.flags import FlagPolicy, FlagRewrite, without_keywords
from mailmover.engine.profile import ServerProfile
from mailmover.providers import get_preset

SYSTEM = frozenset({"\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"})


def test_no_permanentflags_keeps_every_flag_a_client_can_set() -> None:
    flags = ["\\Seen", "\\Flagged", "$Forwarded", "Work"]
    assert FlagPolicy(None).keep(flags) == (("$Forwarded", "Work", "\\Flagged", "\\Seen"), 0)


def test_system_flags_outside_permanentflags_are_dropped_and_counted() -> None:
    policy = FlagPolicy(frozenset({"\\Seen", "\\Answered"}))
    assert policy.keep(["\\Seen", "\\Flagged", "\\Draft"]) == (("\\Seen",), 2)


def test_system_flags_compare_case_insensitively_and_come_out_canonical() -> None:
    policy = FlagPolicy(frozenset({"\\SEEN", "\\flagged"}))
    assert policy.keep(["\\seen", "\\FLAGGED", "\\Seen"]) == (("\\Flagged", "\\Seen"), 0)


def test_recent_is_never_set_nor_counted_as_dropped() -> None:
    assert FlagPolicy(None).keep(["\\Recent", "\\Seen"]) == (("\\Seen",), 0)
    assert FlagPolicy(frozenset()).keep(["\\RECENT"]) == ((), 0)


def test_unknown_system_flags_are_dropped() -> None:
    assert FlagPolicy(None).keep(["\\Important", "\\Seen"]) == (("\\Seen",), 1)


def test_keywords_need_the_backslash_star() -> None:
    flags = ["\\Seen", "$Junk", "Work"]
    assert FlagPolicy(frozenset(SYSTEM | {"\\*"})).keep(flags) == (("$Junk", "Work", "\\Seen"), 0)
    assert FlagPolicy(frozenset(SYSTEM)).keep(flags) == (("\\Seen",), 2)


def test_keywords_listed_in_permanentflags_are_kept_without_the_star() -> None:
    policy = FlagPolicy(frozenset(SYSTEM | {"$Forwarded"}))
    assert policy.keep(["$forwarded", "$Junk"]) == (("$forwarded",), 1)


def test_a_provider_without_keywords_drops_them_whatever_permanentflags_says() -> None:
    policy = FlagPolicy(frozenset(SYSTEM | {"\\*"}), keywords=False)
    assert not policy.any_keyword
    assert policy.keep(["\\Seen", "$Label1", "Work"]) == (("\\Seen",), 2)


def test_any_keyword() -> None:
    assert FlagPolicy(None).any_keyword
    assert FlagPolicy(frozenset({"\\*"})).any_keyword
    assert FlagPolicy(frozenset({"\\*"}), keywords=True).any_keyword
    assert not FlagPolicy(frozenset(SYSTEM)).any_keyword
    assert not FlagPolicy(None, keywords=False).any_keyword


@pytest.mark.parametrize("bad", ["a(b", "x y", 'q"', "pct%", "star*", "br]", "back\\slash", "é"])
def test_keywords_no_atom_can_hold_are_dropped(bad: str) -> None:
    assert FlagPolicy(None).keep([bad, "\\Seen"]) == (("\\Seen",), 1)


def test_refused_flags_are_dropped_and_counted() -> None:
    policy = FlagPolicy(None, refuses=lambda f: f.lower() in {"\\deleted", "$junk"})
    assert policy.keep(["\\Deleted", "\\Seen", "$JUNK", "Work"]) == (("Work", "\\Seen"), 2)


def test_a_preset_refusal_and_a_learnt_one_reach_the_policy() -> None:
    yahoo = ServerProfile(get_preset("yahoo"))
    yahoo.learned_refused.add("$notjunk")
    policy = FlagPolicy(None, keywords=yahoo.keywords, refuses=yahoo.refuses)
    assert policy.keep(["\\Deleted", "\\Seen", "$NotJunk", "$Junk"]) == (("$Junk", "\\Seen"), 2)


def test_exchange_keeps_no_keywords() -> None:
    exchange = ServerProfile(get_preset("exchange"))
    policy = FlagPolicy(frozenset(SYSTEM | {"\\*"}), keywords=exchange.keywords)
    assert policy.keep(["\\Flagged", "$MDNSent"]) == (("\\Flagged",), 1)


def test_flag_map_renames_before_the_policy_decides() -> None:
    rules = FlagRewrite({"$label1": "Important", "Old": "\\Flagged"})
    policy = FlagPolicy(frozenset(SYSTEM), rules=rules)
    # Mapped onto a system flag the destination keeps: kept; onto a keyword it does not: dropped.
    assert policy.keep(["$Label1", "old", "\\Seen"]) == (("\\Flagged", "\\Seen"), 1)


def test_dropped_flags_are_gone_before_counting() -> None:
    rules = FlagRewrite(drop=frozenset({"$mdnsent", "\\draft"}))
    policy = FlagPolicy(None, rules=rules)
    assert policy.keep(["$MDNSent", "\\Draft", "\\Seen"]) == (("\\Seen",), 0)


def test_a_flag_mapped_to_nothing_is_dropped() -> None:
    assert FlagRewrite({"NonJunk": ""}).apply(["NonJunk", "\\Seen"]) == ["\\Seen"]


def test_rules_map_then_drop() -> None:
    rules = FlagRewrite({"a": "b"}, drop=frozenset({"b"}))
    assert rules.apply(["A", "c"]) == ["c"]
    rules = FlagRewrite({"a": "b"}, drop=frozenset({"a"}))
    assert rules.apply(["A", "c"]) == ["b", "c"]


def test_rules_keep_order_and_unmapped_flags_as_they_are() -> None:
    assert FlagRewrite().apply(["Z", "\\Seen", "a"]) == ["Z", "\\Seen", "a"]


def test_kept_flags_are_sorted_and_unique() -> None:
    kept, dropped = FlagPolicy(None).keep(["b", "a", "\\Seen", "a", "\\seen"])
    assert kept == ("\\Seen", "a", "b")
    assert dropped == 0


def test_without_keywords() -> None:
    assert without_keywords(["\\Seen", "$Junk", "Work", "\\Flagged"]) == ("\\Seen", "\\Flagged")
