"""Executing a plan: the call cache, model calls (litellm or the offline
simulator), strict answer parsing, and the async runner."""

from persona_exp.execute.cache import CachedCall, CallCache
from persona_exp.execute.runner import CallResult, RunCounts, Runner

__all__ = ["CachedCall", "CallCache", "CallResult", "RunCounts", "Runner"]
