"""Guarded actions that have no app of their own to register them: role grants and write-scope API tokens."""
