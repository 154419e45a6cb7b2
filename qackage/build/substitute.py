"""melange's ``${{name}}`` substitution for the fixture builder.

The one implementation lives in `qackage.melange.substitution`; this name stays for
the builder's modules and tests.
"""

from __future__ import annotations

from qackage.melange.substitution import package_variables, substitute

__all__ = ["package_variables", "substitute"]
