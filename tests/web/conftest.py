"""Fixtures of the web app's tests: the served app, Chromium and a page (support.web)."""

from support.web import chromium, page, web  # noqa: F401
from support.web_more import mail_servers, oauth, served, smtp  # noqa: F401
