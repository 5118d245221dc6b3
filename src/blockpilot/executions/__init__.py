"""Execution contexts and records of block runs."""
