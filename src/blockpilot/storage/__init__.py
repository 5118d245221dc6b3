"""SQL implementations of blockpilot's stores (SQLite by default, PostgreSQL too)."""
