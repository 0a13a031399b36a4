"""stub"""

from support.emulator.provider import Provider


class Gmail(Provider):
    name = "gmail"
