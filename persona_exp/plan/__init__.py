"""Compiling a spec into a plan: a DAG of content-hashed nodes (see keys.py)."""

from persona_exp.plan.keys import SAMPLING_FIELDS, call_key, canonical_json, node_key
from persona_exp.plan.plan import Call, Plan, slot

__all__ = ["SAMPLING_FIELDS", "Call", "Plan", "call_key", "canonical_json", "node_key", "slot"]
