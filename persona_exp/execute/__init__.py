"""Executing a plan: the call cache, and (to come) the async runner and models."""

from persona_exp.execute.cache import CachedCall, CallCache

__all__ = ["CachedCall", "CallCache"]
