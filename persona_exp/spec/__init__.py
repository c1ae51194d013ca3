"""Experiment specs: pydantic models of the YAML files and a loader whose errors
name file, line, column and field."""

from persona_exp.spec.loader import Located, apply_overrides, load, parse_yaml, read_spec_file, validate
from persona_exp.spec.models import ModelConfig, OutputSpec, SimConfig, Strict

__all__ = [
    "Located",
    "ModelConfig",
    "OutputSpec",
    "SimConfig",
    "Strict",
    "apply_overrides",
    "load",
    "parse_yaml",
    "read_spec_file",
    "validate",
]
