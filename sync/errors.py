"""Exceptions of the store and the MQTT link; sqlite3 and aiomqtt errors are translated here."""

from __future__ import annotations


class SyncError(Exception):
    """Base class of every error raised by `sync`."""


class StoreError(SyncError):
    """The database could not be read or written."""


class StoreFull(StoreError):
    """The disk (or the database's size limit) is full: nothing more can be written."""


class ValidationError(SyncError, ValueError):
    """A change to the store was refused; the message says what is wrong, for a person."""


class NotFound(ValidationError, LookupError):
    """A unit, occupant or card named in a change does not exist."""


class LinkError(SyncError, ConnectionError):
    """The MQTT broker could not be reached or dropped the connection."""
