"""Gmail's labels (X-GM-EXT-1): one message, several folders.

Gmail shows a message once per label, and every message once more in
[Gmail]/All Mail. Copying each label folder gives "a copy in every label's
folder"; All Mail then contributes only the messages no label folder holds.
"""

from __future__ import annotations

from mailmover.imap.client import IMAPClient

# Gmail labels that are not folders of their own: a message with only these is archived.
_NOT_FOLDERS = {"\\important", "\\starred"}


async def unlabelled(client: IMAPClient, uids: list[int]) -> list[int]:
    """The messages of Gmail's All Mail that no label folder holds (archived mail)."""
    chunks = [client.uid_fetch_nowait(uids[i : i + 5000], "(UID X-GM-LABELS)")
              for i in range(0, len(uids), 5000)]  # fmt: skip
    keep: list[int] = []
    for chunk in chunks:
        for fetch in (await chunk).fetches:
            labels = {label.lower() for label in fetch.gm_labels or ()}
            if fetch.uid is not None and labels <= _NOT_FOLDERS:
                keep.append(fetch.uid)
    return sorted(keep)
