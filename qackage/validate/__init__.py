"""Prove test stanzas by running them: plans, test roots, the sandbox, reports."""
