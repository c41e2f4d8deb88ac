"""The built-in OAuth 2.0 authorization server (SMART App Launch v2, Backend Services).

Framework-free: :class:`AuthServer` takes form parameters and returns results; the
HTTP side lives in ``cmio.api.auth``.
"""

from cmio.security.oauth.settings import AuthSettings

__all__ = ["AuthSettings"]
