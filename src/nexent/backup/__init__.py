"""Backups of a whole deployment and their restore (docs/backups.md)."""
