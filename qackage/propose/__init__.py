"""Propose test steps from analysis facts and probe observations (pure: nothing runs here)."""
