"""One exception hierarchy, with messages a user can act on."""

from __future__ import annotations


class ItsmMlError(Exception):
    """Base of every error the project raises on purpose."""


class ConfigError(ItsmMlError):
    """params.yaml or a command-line option is not usable as given."""


class SourceError(ItsmMlError):
    """An export cannot be read or mapped onto a canonical table."""


class ValidationFailed(ItsmMlError):
    """A canonical table broke a critical rule or quarantined too many rows."""


class NothingToPromote(ItsmMlError):
    """The challenger already is the champion: no decision to make."""
