"""A provider-emulating IMAP proxy in front of a real Dovecot, for the tests.

``Emulator(host, port, profile=..., **options)`` (asyncio) and
``run_emulator(host, port, profile=..., **options)`` (a thread, for synchronous
code) accept IMAP clients on 127.0.0.1 and behave as the chosen provider does
where it matters; see each profile's module for what it emulates and what not:
``passthrough`` (profile.py), ``gmail`` (gmail.py), ``microsoft``
(microsoft.py), ``groupware`` and ``yahoo`` (flagrules.py), ``cyrus-names`` (names.py).
"""

from support.emulator.server import Emulator, ThreadedEmulator, run_emulator

__all__ = ["Emulator", "ThreadedEmulator", "run_emulator"]
