"""Folder planning (``engine.folders.plan_folders``) from what LIST and NAMESPACE said."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailmover.engine.folders import FolderPlan, Side, logical_path, plan_folders
from mailmover.engine.profile import ServerProfile
from mailmover.errors import UsageError
from mailmover.imap.proto.responses import ListMailbox, Namespace, NamespaceEntry
from mailmover.providers import get_preset


def box(name: str, *attributes: str, delimiter: str | None = "/") -> ListMailbox:
    return ListMailbox("LIST", frozenset(attributes), delimiter, name)


def side(
    *mailboxes: ListMailbox | str,
    delimiter: str | None = "/",
    prefix: str | None = None,
    subscribed: Iterable[str] | None = None,
) -> Side:
    """A server's LIST (plain names get ``delimiter``), NAMESPACE when ``prefix`` is given."""
    listed = [m if isinstance(m, ListMailbox) else box(m, delimiter=delimiter) for m in mailboxes]
    namespace = None
    if prefix is not None:
        namespace = Namespace((NamespaceEntry(prefix, delimiter),), (), ())
    names = {m.name for m in listed}
    return Side(listed, frozenset(names if subscribed is None else subscribed), namespace)


def by_source(plans: list[FolderPlan]) -> dict[str, FolderPlan]:
    return {p.source_name: p for p in plans}


def dest_names(plans: list[FolderPlan]) -> dict[str, str]:
    return {p.source_name: p.dest_name for p in plans}


# -- separators and namespace prefixes -------------------------------------------------


def test_separator_changes_between_sides() -> None:
    source = side("INBOX", "Work", "Work.2019", "Work.2019.Q1", delimiter=".")
    plans = plan_folders(source, side("INBOX", delimiter="/"))
    assert dest_names(plans) == {
        "INBOX": "INBOX",
        "Work": "Work",
        "Work.2019": "Work/2019",
        "Work.2019.Q1": "Work/2019/Q1",
    }
    assert by_source(plans)["Work.2019.Q1"].path == ("Work", "2019", "Q1")
    assert all(p.note is None for p in plans)


def test_courier_prefix_is_taken_off_the_source() -> None:
    source = side("INBOX", "INBOX.Work", "INBOX.Work.2019", delimiter=".", prefix="INBOX.")
    assert logical_path("INBOX.Work.2019", source) == ("Work", "2019")
    assert logical_path("INBOX", source) == ("INBOX",)
    plans = plan_folders(source, side("INBOX"))
    assert dest_names(plans) == {
        "INBOX": "INBOX",
        "INBOX.Work": "Work",
        "INBOX.Work.2019": "Work/2019",
    }


def test_courier_prefix_is_put_on_the_destination() -> None:
    dest = side("INBOX", delimiter=".", prefix="INBOX.")
    plans = plan_folders(side("INBOX", "Work", "Work/2019"), dest)
    assert dest_names(plans) == {
        "INBOX": "INBOX",
        "Work": "INBOX.Work",
        "Work/2019": "INBOX.Work.2019",
    }


def test_destination_separator_from_its_preset_when_list_gives_none() -> None:
    # A destination that listed nothing with a delimiter: Courier's preset says ".".
    dest = Side([], frozenset(), None)
    profile = ServerProfile(get_preset("courier"))
    plans = plan_folders(side("A", "A/B"), dest, dest_profile=profile)
    assert dest_names(plans) == {"A": "A", "A/B": "A.B"}


def test_a_part_holding_the_destination_separator_is_renamed() -> None:
    plans = plan_folders(side("v1.2", "Projects/a.b"), side("INBOX", delimiter="."))
    plan = by_source(plans)
    assert plan["v1.2"].dest_name == "v1_2"
    assert plan["Projects/a.b"].dest_name == "Projects.a_b"
    assert plan["v1.2"].note == "renamed: '.' separates levels on the destination"
    assert plan["Projects/a.b"].note is not None


def test_underscore_separator_gets_a_dash_substitute() -> None:
    plans = plan_folders(side("a_b/c"), side("INBOX", delimiter="_"))
    assert dest_names(plans) == {"a_b/c": "a-b_c"}


# -- SPECIAL-USE roles and the presets' names ------------------------------------------


def test_special_use_role_lands_in_the_destination_folder_of_that_role() -> None:
    source = side("INBOX", box("Sent Items", "\\Sent"), box("Deleted Items", "\\Trash"))
    dest = side("INBOX", box("Sent", "\\Sent"), box("Trash", "\\Trash"))
    plan = by_source(plan_folders(source, dest))
    assert (plan["Sent Items"].dest_name, plan["Sent Items"].role) == ("Sent", "\\Sent")
    assert plan["Sent Items"].dest_exists
    assert plan["Sent Items"].note == "Sent folder of the destination"
    assert (plan["Deleted Items"].dest_name, plan["Deleted Items"].role) == ("Trash", "\\Trash")


def test_roles_recognised_by_common_names_without_special_use() -> None:
    source = side("Gesendet", "Spam", "Entwürfe")
    dest = side(box("Sent", "\\Sent"), box("Junk", "\\Junk"), box("Drafts", "\\Drafts"))
    assert dest_names(plan_folders(source, dest)) == {
        "Entwürfe": "Drafts",
        "Gesendet": "Sent",
        "Spam": "Junk",
    }


def test_a_nested_folder_named_sent_has_no_role() -> None:
    plan = by_source(plan_folders(side("Clients/Sent"), side(box("Sent", "\\Sent"))))
    assert plan["Clients/Sent"].role is None
    assert plan["Clients/Sent"].dest_name == "Clients/Sent"


def test_role_without_a_destination_folder_keeps_its_name() -> None:
    plan = by_source(plan_folders(side(box("Sent Items", "\\Sent")), side("INBOX")))
    assert plan["Sent Items"].dest_name == "Sent Items"
    assert plan["Sent Items"].role == "\\Sent"
    assert not plan["Sent Items"].dest_exists


def test_a_noselect_destination_folder_is_not_a_role_target() -> None:
    dest = side(box("Sent", "\\Sent", "\\Noselect"), box("Sent Mail", "\\Sent"))
    assert dest_names(plan_folders(side(box("S", "\\Sent")), dest)) == {"S": "Sent Mail"}


def test_destination_preset_names_its_role_folders() -> None:
    # Exchange announces no SPECIAL-USE on old versions: the preset's names say which is which.
    dest = side("INBOX", "Sent Items", "Deleted Items", "Junk E-mail")
    profile = ServerProfile(get_preset("exchange"))
    source = side("INBOX", box("Sent", "\\Sent"), box("Trash", "\\Trash"), box("Spam", "\\Junk"))
    assert dest_names(plan_folders(source, dest, dest_profile=profile)) == {
        "INBOX": "INBOX",
        "Sent": "Sent Items",
        "Spam": "Junk E-mail",
        "Trash": "Deleted Items",
    }


def test_gmail_source_views_left_out_and_system_folders_lifted() -> None:
    source = side(
        "INBOX",
        box("[Gmail]", "\\Noselect"),
        box("[Gmail]/All Mail", "\\All"),
        box("[Gmail]/Important", "\\Important"),
        box("[Gmail]/Starred", "\\Flagged"),
        box("[Gmail]/Sent Mail", "\\Sent"),
        "[Gmail]/Chats",
        "Receipts",
    )
    plans = plan_folders(source, side("INBOX"), source_preset=get_preset("gmail"))
    plan = by_source(plans)
    assert set(plan) == {
        "INBOX",
        "[Gmail]/All Mail",
        "[Gmail]/Sent Mail",
        "[Gmail]/Chats",
        "Receipts",
    }
    assert plan["[Gmail]/Sent Mail"].dest_name == "Sent Mail"
    assert plan["[Gmail]/Sent Mail"].role == "\\Sent"
    assert plan["[Gmail]/Chats"].dest_name == "Chats"
    all_mail = plan["[Gmail]/All Mail"]
    assert all_mail.unlabelled_only
    assert (all_mail.dest_name, all_mail.role) == ("Archive", "\\Archive")
    assert all_mail.note == "archived Gmail mail (in no other label)"
    assert [p.unlabelled_only for p in plans].count(True) == 1


def test_gmail_sent_found_by_the_preset_without_special_use() -> None:
    source = side("INBOX", "[Gmail]/Sent Mail")
    dest = side("INBOX", box("Sent", "\\Sent"))
    plan = by_source(plan_folders(source, dest, source_preset=get_preset("gmail")))
    assert plan["[Gmail]/Sent Mail"].role == "\\Sent"
    assert plan["[Gmail]/Sent Mail"].dest_name == "Sent"


def test_gmail_to_gmail_keeps_archived_mail_in_all_mail() -> None:
    gmail = get_preset("gmail")
    source = side("INBOX", box("[Gmail]/All Mail", "\\All"))
    dest = side("INBOX", box("[Gmail]/All Mail", "\\All"))
    plan = by_source(
        plan_folders(source, dest, source_preset=gmail, dest_profile=ServerProfile(gmail))
    )
    assert plan["[Gmail]/All Mail"].dest_name == "[Gmail]/All Mail"
    assert plan["[Gmail]/All Mail"].dest_exists


def test_destination_preset_renames_what_it_refuses() -> None:
    profile = ServerProfile(get_preset("gmail"))
    plans = plan_folders(
        side("a^b", " padded ", "Updates", "Plain"), side("INBOX"), dest_profile=profile
    )
    plan = by_source(plans)
    assert plan["a^b"].dest_name == "a_b"
    assert plan[" padded "].dest_name == "padded"
    assert plan["Updates"].dest_name == "Updates (1)"
    assert plan["Plain"].dest_name == "Plain"
    for name in ("a^b", " padded ", "Updates"):
        assert plan[name].note is not None and "Gmail" in plan[name].note
    assert plan["Plain"].note is None


# -- case clashes ----------------------------------------------------------------------


def test_names_that_clash_when_case_is_ignored_are_told_apart() -> None:
    plans = plan_folders(side("INBOX", "Work", "work", "WORK"), side("INBOX"))
    names = dest_names(plans)
    assert names == {"INBOX": "INBOX", "WORK": "WORK", "Work": "Work-2", "work": "work-3"}
    assert len({n.casefold() for n in names.values()}) == len(names)
    assert by_source(plans)["Work"].note == "its name clashes with 'WORK' when case is ignored"


def test_two_source_folders_mapped_onto_one_role_folder_are_told_apart() -> None:
    source = side(box("Sent", "\\Sent"), box("Sent Messages", "\\Sent"))
    names = dest_names(plan_folders(source, side(box("Sent", "\\Sent"))))
    assert names["Sent"] == "Sent"
    assert names["Sent Messages"] == "Sent-2"


def test_a_suffix_already_taken_is_skipped() -> None:
    names = dest_names(plan_folders(side("a", "A", "a-2"), side("INBOX")))
    assert names == {"A": "A", "a": "a-2", "a-2": "a-2-2"}


# -- --map, --include, --exclude -------------------------------------------------------


def test_map_moves_a_folder_under_another_name() -> None:
    plans = plan_folders(
        side("INBOX", "Old", "Old/Sub"), side("INBOX", delimiter="."), mapping={"Old": "New/Place"}
    )
    plan = by_source(plans)
    assert plan["Old"].dest_name == "New.Place"
    assert plan["Old"].note == "mapped by --map to New/Place"
    assert plan["Old/Sub"].dest_name == "Old.Sub"  # a mapping names one folder, not a tree


def test_map_uses_the_logical_path_of_a_prefixed_source() -> None:
    source = side("INBOX", "INBOX.Old", delimiter=".", prefix="INBOX.")
    plan = by_source(plan_folders(source, side("INBOX"), mapping={"Old": "Archive/Old"}))
    assert plan["INBOX.Old"].dest_name == "Archive/Old"


def test_map_wins_over_the_role() -> None:
    source = side(box("Sent", "\\Sent"))
    dest = side(box("Sent", "\\Sent"))
    assert dest_names(plan_folders(source, dest, mapping={"Sent": "Old Sent"})) == {
        "Sent": "Old Sent"
    }


def test_map_naming_a_missing_folder_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="'Nope'"):
        plan_folders(side("INBOX", "Work"), side("INBOX"), mapping={"Nope": "X"})


def test_map_naming_an_excluded_folder_is_not_an_error() -> None:
    plans = plan_folders(side("INBOX", "Old"), side("INBOX"), exclude=["Old"], mapping={"Old": "X"})
    assert [p.source_name for p in plans] == ["INBOX"]


def test_include_takes_a_folder_and_its_subfolders() -> None:
    source = side("INBOX", "Work", "Work/2019", "Work/2019/Q1", "Workshop", "Home")
    plans = plan_folders(source, side("INBOX"), include=["Work"])
    assert [p.source_name for p in plans] == ["Work", "Work/2019", "Work/2019/Q1"]


def test_exclude_leaves_out_a_folder_and_its_subfolders() -> None:
    source = side("INBOX", "Trash", "Trash/Old", "Trashy", "Work")
    plans = plan_folders(source, side("INBOX"), exclude=["Trash"])
    assert [p.source_name for p in plans] == ["INBOX", "Trashy", "Work"]


def test_include_and_exclude_take_globs_on_logical_paths() -> None:
    source = side(
        "INBOX",
        "INBOX.Lists.a",
        "INBOX.Lists.b",
        "INBOX.Lists.b.old",
        delimiter=".",
        prefix="INBOX.",
    )
    plans = plan_folders(source, side("INBOX"), include=["INBOX", "Lists/*"], exclude=["*/old"])
    assert [p.source_name for p in plans] == ["INBOX", "INBOX.Lists.a", "INBOX.Lists.b"]


# -- what every plan holds -------------------------------------------------------------


def test_inbox_first_noselect_left_out_subscriptions_kept() -> None:
    source = side(
        "Archive",
        box("Parent", "\\Noselect"),
        "Parent/Child",
        box("Gone", "\\NonExistent"),
        "inbox",
        subscribed={"Archive"},
    )
    dest = side("INBOX", "Archive")
    plans = plan_folders(source, dest)
    assert [p.source_name for p in plans] == ["inbox", "Archive", "Parent/Child"]
    assert [p.dest_name for p in plans] == ["INBOX", "Archive", "Parent/Child"]
    assert [p.subscribed for p in plans] == [False, True, False]
    assert [p.dest_exists for p in plans] == [True, True, False]


def test_the_plan_is_the_same_whatever_order_list_gave() -> None:
    names = ["INBOX", "b", "B", "a/x", "a", box("Sent", "\\Sent")]
    forward = plan_folders(side(*names), side(box("Sent", "\\Sent")))
    backward = plan_folders(side(*reversed(names)), side(box("Sent", "\\Sent")))
    assert forward == backward


# -- any LIST at all -------------------------------------------------------------------

_PART = st.text(alphabet="aAbB._- /", min_size=1, max_size=4).filter(lambda p: p.strip("/") == p)


@settings(max_examples=150, deadline=None)
@given(
    names=st.lists(
        st.lists(_PART | st.just("INBOX"), min_size=1, max_size=3)
        .map("/".join)
        .filter(lambda n: n.upper() != "INBOX"),
        max_size=12,
    ),
    dest_delimiter=st.sampled_from(["/", ".", "_"]),
)
def test_any_list_gives_distinct_destination_names(names: list[str], dest_delimiter: str) -> None:
    source = side("INBOX", *dict.fromkeys(names))
    plans = plan_folders(source, side("INBOX", delimiter=dest_delimiter))
    folded = [p.dest_name.casefold() for p in plans]
    assert len(folded) == len(set(folded)), [(p.source_name, p.dest_name) for p in plans]
    assert plans[0].source_name == "INBOX" and plans[0].dest_name == "INBOX"
    assert {p.source_name for p in plans} == set(source.subscribed)
