"""Errors the domain raises. Each carries a stable code and a message fit for a person."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every expected failure; `code` is stable, `message` is shown to people."""

    code = "BAD_REQUEST"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None):
        """Create the error.

        Args:
            message: What went wrong, in words for the person who caused it.
            code: A stable machine-readable code (defaults to the class's).
            field: The form field at fault, if one is.
        """
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code


class InvalidInput(DomainError):
    """The request itself is wrong (a field too long, an email malformed...)."""

    code = "VALIDATION_ERROR"


class NotAuthenticated(DomainError):
    """No valid credentials: wrong password, no session, an expired session."""

    code = "UNAUTHORIZED"


class NotFound(DomainError):
    """The thing does not exist, or the caller may not know that it does."""

    code = "NOT_FOUND"


class Conflict(DomainError):
    """The request clashes with what is stored (a taken email...)."""

    code = "CONFLICT"


class Throttled(DomainError):
    """Too many attempts; `retry_after` says in how many whole seconds to try again."""

    code = "TOO_MANY_REQUESTS"

    def __init__(self, retry_after: int):
        """Create the error.

        Args:
            retry_after: Whole seconds until an attempt will be considered again.
        """
        super().__init__(f"Too many attempts, try again in {retry_after} s")
        self.retry_after = retry_after
