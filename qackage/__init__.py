"""qackage: write, prove and ship melange test stanzas for Wolfi-style .apk packages."""

__version__ = "0.1.0"
