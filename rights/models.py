"""Takedown requests, their matches, the blocklist and the audit trail."""
