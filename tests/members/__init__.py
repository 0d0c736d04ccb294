"""The members page and its API (#14 item 4)."""
