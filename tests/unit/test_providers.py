"""Provider presets: every shipped file loads, bad files fail loudly, servers are recognised."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import pytest

from mailmover.engine.folders import ROLES
from mailmover.errors import UsageError
from mailmover.providers import ROLE_KEYS, Preset, detect, get_preset, load_presets

SHIPPED_DIR = resources.files("mailmover.providers").joinpath("presets")
# The providers issue 5 names; more may be added, none of these may go.
REQUIRED = {
    "gmail", "microsoft365", "exchange", "zimbra", "scalix", "yahoo",
    "icloud", "fastmail", "dovecot", "cyrus", "courier", "generic",
}  # fmt: skip

MINIMAL = """\
name = "acme"
title = "Acme Mail"
host = "imap.acme.example"
port = 993
security = "tls"
auth = ["login"]
sources = ["https://acme.example/imap"]
"""


def write(directory: Path, text: str, name: str = "acme") -> Path:
    path = directory / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


# -- the shipped presets -------------------------------------------------------------


def test_every_shipped_file_loads_under_its_own_name() -> None:
    presets = load_presets()
    stems = {
        f.name.removesuffix(".toml") for f in SHIPPED_DIR.iterdir() if f.name.endswith(".toml")
    }
    assert set(presets) == stems
    assert stems >= REQUIRED
    for name, preset in presets.items():
        assert preset.name == name
        assert preset.sources, name
        assert all(u.startswith(("https://", "http://")) for u in preset.sources), name


def test_load_presets_returns_a_fresh_dict_each_time() -> None:
    first = load_presets()
    first.pop("gmail")
    assert "gmail" in load_presets()


def test_role_keys_are_the_engine_roles() -> None:
    assert tuple(ROLE_KEYS) == ROLES


def test_no_preset_claims_another_presets_host() -> None:
    presets = list(load_presets().values())
    for owner in presets:
        if owner.host is None:
            continue
        claimants = [p.name for p in presets if p.matches_host(owner.host)]
        assert claimants == [owner.name], (owner.host, claimants)


def test_oauth_mechanisms_come_with_endpoints_and_scopes() -> None:
    for preset in load_presets().values():
        if {"xoauth2", "oauthbearer"} & set(preset.auth):
            assert preset.oauth2 is not None, preset.name
            assert preset.oauth2.token_endpoint.startswith("https://")
            assert preset.oauth2.scopes


def test_folder_role_names_are_unique_within_a_preset() -> None:
    for preset in load_presets().values():
        seen: dict[str, str] = {}
        for key, names in preset.folders.roles:
            for name in names:
                folded = preset.folders.fold(name)
                assert folded not in seen, (preset.name, name, seen.get(folded), key)
                seen[folded] = key


# -- strict loading ------------------------------------------------------------------


def test_a_minimal_preset_loads_with_empty_defaults(tmp_path: Path) -> None:
    write(tmp_path, MINIMAL)
    (tmp_path / "README.txt").write_text("not a preset")
    presets = load_presets(tmp_path)
    assert list(presets) == ["acme"]
    acme = presets["acme"]
    assert (acme.port, acme.security, acme.auth) == (993, "tls", ("login",))
    assert acme.max_connections is None and acme.max_message_size is None
    assert acme.oauth2 is None and acme.admin_login is None
    assert acme.flags.keywords is None and acme.folders.separator is None
    assert acme.role_names("\\Sent") == ()
    assert acme.throttling.backoff("NO Request is throttled") is None


BAD = [
    # (what is added or replaced, the key the error must name)
    (MINIMAL + "colour = 'red'\n", "colour: unknown key"),
    (MINIMAL + "[folders]\nsepparator = '/'\n", "folders.sepparator: unknown key"),
    (MINIMAL + "[folders.roles]\nspam = ['Junk']\n", "folders.roles.spam: unknown key"),
    (MINIMAL.replace("port = 993", 'port = "993"'), "port: expected an integer, got str '993'"),
    (MINIMAL + "max_connections = true\n", "max_connections: expected an integer, got true"),
    (MINIMAL + "max_message_size = 0\n", "max_message_size: must be positive"),
    (MINIMAL.replace('auth = ["login"]', "auth = [1]"), "auth[0]: expected a string"),
    (MINIMAL.replace('auth = ["login"]', 'auth = ["ntlm"]'), "auth[0]: must be one of"),
    (MINIMAL.replace('"tls"', '"ssl"'), "security: must be one of tls, starttls"),
    # imap.transport.Security has "plain" too; a preset never names an unencrypted port.
    (MINIMAL.replace('"tls"', '"plain"'), "security: must be one of tls, starttls"),
    (MINIMAL.replace("port = 993\n", ""), "port: missing required key"),
    (MINIMAL.replace('sources = ["https://acme.example/imap"]\n', ""), "sources: missing"),
    (MINIMAL.replace('name = "acme"', 'name = "other"'), "name: is 'other' but the file is acme"),
    (MINIMAL + "[folders]\nseparator = '::'\n", "folders.separator: must be one character"),
    (MINIMAL + "[flags]\nrefused = ['\\Dele ted']\n", "flags.refused[0]: not an IMAP flag"),
    (MINIMAL + "[throttling]\npatterns = ['(unclosed']\n", "throttling.patterns[0]: not a regular"),
    (MINIMAL + "[throttling]\nbackoff_hint = 'wait (\\d+)'\n", "throttling.backoff_hint: needs"),
    (MINIMAL + "[caps]\nupload_per_day = 1.5\n", "caps.upload_per_day: expected an integer"),
    (MINIMAL + "[[virtual_folders]]\nflag = 'x'\n", "virtual_folders[0].name: missing"),
    (MINIMAL + "[admin_login]\nmethod = 'login-form'\n", "admin_login.form: login-form needs"),
    (MINIMAL.replace('auth = ["login"]', 'auth = ["xoauth2"]'), "oauth2: auth names an OAuth2"),
    (
        MINIMAL + "[oauth2]\nauthorization_endpoint = 'http://a'\ntoken_endpoint = 'https://t'\n"
        "scopes = ['s']\n",
        "oauth2.authorization_endpoint: must be an https URL",
    ),
    (
        MINIMAL + "[oauth2]\nauthorization_endpoint = 'https://a'\ntoken_endpoint = 'https://t'\n"
        "scopes = ['s']\nflow = 'device'\n",
        "oauth2.flow: device flow needs a device_endpoint",
    ),
    (MINIMAL + "port = 143\n", "not valid TOML"),
]


@pytest.mark.parametrize(("text", "expected"), BAD, ids=[e for _, e in BAD])
def test_a_bad_preset_names_its_file_and_key(tmp_path: Path, text: str, expected: str) -> None:
    # one good file beside it changes nothing
    write(tmp_path, MINIMAL.replace('name = "acme"', 'name = "fine"'), name="fine")
    write(tmp_path, text)
    with pytest.raises(ValueError, match=r"^acme\.toml: ") as caught:
        load_presets(tmp_path)
    assert expected in str(caught.value)


def test_a_float_field_takes_an_integer(tmp_path: Path) -> None:
    write(tmp_path, MINIMAL + "[throttling]\npatterns = ['slow']\ndefault_backoff = 5\n")
    throttling = load_presets(tmp_path)["acme"].throttling
    assert throttling.backoff("please go slow") == 5.0


# -- finding presets -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("imap.gmail.com", "gmail"),
        ("outlook.office365.com", "microsoft365"),
        ("imap.mail.yahoo.com", "yahoo"),
        ("imap.mail.me.com", "icloud"),
        ("imap.fastmail.com", "fastmail"),
        ("IMAP.GMAIL.COM.", "gmail"),
        ("imap-mail.outlook.com", "microsoft365"),
        ("export.imap.yahoo.com", "yahoo"),
    ],
)
def test_detect_by_host(host: str, expected: str) -> None:
    preset = detect(host)
    assert preset is not None and preset.name == expected


@pytest.mark.parametrize("host", ["mail.example.org", "outlook.com.evil.example", "", "gmail.com"])
def test_detect_unknown_host_is_none(host: str) -> None:
    assert detect(host) is None
    assert detect(host, frozenset({"IMAP4rev1", "IDLE", "SPECIAL-USE"})) is None


def test_detect_gmail_by_capability_behind_any_name() -> None:
    preset = detect("mail.example.org", frozenset({"IMAP4rev1", "x-gm-ext-1"}))
    assert preset is not None and preset.name == "gmail"


def test_host_decides_before_capabilities() -> None:
    preset = detect("imap.fastmail.com", frozenset({"X-GM-EXT-1"}))
    assert preset is not None and preset.name == "fastmail"


def test_get_preset_ignores_case_and_names_the_known_presets_when_unknown() -> None:
    assert get_preset(" GMail ").name == "gmail"
    with pytest.raises(UsageError) as caught:
        get_preset("hotmail")
    assert caught.value.exit_code == 2
    message = caught.value.message
    assert "'hotmail'" in message
    for name in load_presets():
        assert re.search(rf"\b{name}\b", message), name


# -- what presets tell the engine ----------------------------------------------------


def test_role_names_by_role_or_key() -> None:
    microsoft = get_preset("microsoft365")
    assert microsoft.role_names("\\Sent") == microsoft.role_names("sent") != ()
    assert "Deleted Items" in microsoft.role_names("\\trash")
    assert get_preset("gmail").role_names("\\Archive") == ()
    with pytest.raises(ValueError, match="unknown folder role"):
        microsoft.role_names("\\All")


def test_role_of_follows_the_providers_case_rules() -> None:
    microsoft = get_preset("microsoft365")
    assert microsoft.role_of("junk email") == "\\Junk"
    assert microsoft.role_of("Work") is None
    gmail = get_preset("gmail")
    assert gmail.role_of("[Gmail]/Spam") == "\\Junk"
    assert gmail.role_of("[gmail]/spam") is None  # Gmail is not case-insensitive here


def test_reserved_names() -> None:
    assert get_preset("microsoft365").is_reserved("files")
    assert not get_preset("microsoft365").is_reserved("Filed")
    assert get_preset("gmail").is_reserved("[Gmail]")
    assert not get_preset("dovecot").is_reserved("Files")


def test_refused_flags_compare_without_case() -> None:
    yahoo = get_preset("yahoo")
    assert yahoo.flags.refuses("\\deleted")
    assert not yahoo.flags.refuses("\\Seen")
    assert not get_preset("gmail").flags.refuses("\\Deleted")


def test_microsoft_throttling_reply_gives_its_backoff() -> None:
    throttling = get_preset("microsoft365").throttling
    reply = "1069 NO Request is throttled. Suggested Backoff Time: 299609 milliseconds"
    assert throttling.backoff(reply) == pytest.approx(299.609)
    assert throttling.backoff("BAD Request is throttled.") == throttling.default_backoff
    assert throttling.backoff("NO [TRYCREATE] no such mailbox") is None
    assert not throttling.is_quota(reply)


def test_gmail_daily_cap_reply_is_a_quota_not_a_backoff() -> None:
    gmail = get_preset("gmail")
    reply = "A7 NO [OVERQUOTA] Account exceeded command or bandwidth limits. (Failure)"
    assert gmail.throttling.is_quota(reply)
    assert gmail.throttling.backoff(reply) is None
    assert gmail.caps.download_per_day and gmail.caps.upload_per_day
    assert gmail.caps.upload_per_day < gmail.caps.download_per_day


def test_gmail_virtual_folders_by_attribute_or_name() -> None:
    gmail = get_preset("gmail")
    localised = gmail.virtual_folder(
        "[Gmail]/Alle Nachrichten", frozenset({"\\HasNoChildren", "\\All"})
    )
    assert localised is not None and localised.name == "[Gmail]/All Mail"
    starred = gmail.virtual_folder("[Gmail]/Starred")
    assert starred is not None and starred.flag == "\\Flagged"
    assert gmail.virtual_folder("INBOX", frozenset({"\\HasNoChildren"})) is None
    assert get_preset("dovecot").virtual_folder("[Gmail]/Starred") is None


def test_matches_host_is_a_whole_name_pattern() -> None:
    microsoft: Preset = get_preset("microsoft365")
    assert microsoft.matches_host("imap.outlook.com")
    assert not microsoft.matches_host("outlook.com")
    assert not microsoft.matches_host("imap.outlook.com.example")
