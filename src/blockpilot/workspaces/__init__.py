"""Per-user workspaces: one per user, holding files under virtual paths."""
