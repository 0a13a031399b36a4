"""Provider presets as data: one TOML file per mail provider.

A preset records what a provider documents and no server announces: its host
and port, how to log in (app passwords, OAuth2 endpoints and scopes), the
connections an account may hold, the largest message it takes, daily
bandwidth caps, folder names and the names it refuses, flags it rejects, and
the replies it throttles with. See ``model`` for the fields.
"""

from mailmover.providers.model import (
    ROLE_KEYS,
    AdminLogin,
    Caps,
    FlagRules,
    FolderRules,
    OAuth2Config,
    Preset,
    Throttling,
    VirtualFolder,
)
from mailmover.providers.registry import detect, get_preset, load_presets

__all__ = [
    "ROLE_KEYS",
    "AdminLogin",
    "Caps",
    "FlagRules",
    "FolderRules",
    "OAuth2Config",
    "Preset",
    "Throttling",
    "VirtualFolder",
    "detect",
    "get_preset",
    "load_presets",
]
