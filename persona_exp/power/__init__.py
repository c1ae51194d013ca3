"""Power analysis before a paid run: how many personas and questions a design
needs to detect an effect of a given size, estimated on the offline simulator.

``run_study(Study(...))`` simulates each design of a grid many times with
planted effects, analyses every replicate with the experiment's own analysis
(the intervals and multiplicity correction `run` uses) and reports power,
false-positive rates, interval widths and the design's cost on the spec's
real models. Everything it reports is SIMULATED. See ``study`` for the two
paths (brute force for every kind, bulk for leave-one-out) and ``bulk`` for
the vectorized simulated judge.
"""

from persona_exp.power.design import Effect, parse_effect, parse_grid
from persona_exp.power.study import Study, run_study

__all__ = ["Effect", "Study", "parse_effect", "parse_grid", "run_study"]
