"""Providers: one module per API family, registered by name (see `base.Provider`)."""

from .base import Job, Provider, State, get_provider, provider_names, register

__all__ = ["Job", "Provider", "State", "get_provider", "provider_names", "register"]
