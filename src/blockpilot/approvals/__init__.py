"""Control over what a copilot may do: policies, reviews by a person, at-most-once calls.

See docs/approvals.md for the behaviour and the commands.
"""
