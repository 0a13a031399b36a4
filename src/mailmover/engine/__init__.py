"""One mailbox migration: plan folders, transfer, verify. Knows nothing of jobs or web."""
