"""IMAP: a sans-IO protocol layer (``proto``) and an asyncio client (``client``)."""
