"""Fixtures of the web app's tests: the served app, Chromium and a page (support.web)."""

from support.web import chromium, page, web  # noqa: F401
