"""OAuth 2.0 error responses (RFC 6749 section 5.2)."""

from __future__ import annotations

__all__ = ["OAuthError"]


class OAuthError(Exception):
    """An OAuth error: ``error`` code, description and HTTP status."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status

    def to_json(self) -> dict[str, str]:
        """The error response body."""
        return {"error": self.error, "error_description": self.description}
