"""A small client for Framecast's public REST API (standard library only)."""

from .client import ApiError, Client

__all__ = ["ApiError", "Client"]
