"""Plan steps shared by the experiments (and by population and prompt curation).

Each step adds LLM calls to a :class:`~persona_exp.plan.Plan` and says how to
read their answers; experiments compose them. Steps whose *later* calls depend
on what earlier calls said (generated questions, a tournament's next round, a
filter) run the earlier calls at plan time through ``Context.stage``, which
executes a partial plan with the same runner and cache as the final run.

- ``context``: what a step needs (models, seed, the stage runner).
- ``calls``: one templated call; deterministic coin flips.
- ``refine``: baseline answer, DPF critique and revision.
- ``judge``: a role-play pairwise judgment with a seeded A/B order.
- ``tournament``: best of n candidates by single elimination.
- ``debate``: two debaters argue over an answer, a judge decides (persona-bench).
- ``questions``: LLM-generated question sets (WikiPersonas personal/divergent).
- ``classify``: yes/no classifiers (controversial prompts, profile consistency).
- ``templates``: the papers' prompts, the defaults every spec can override.
"""

from persona_exp.steps.calls import add_call, fill_template, seeded_flip
from persona_exp.steps.context import Context, StagePending
from persona_exp.steps.judge import add_judgment, preferred
from persona_exp.steps.refine import add_refinement

__all__ = ["Context", "StagePending", "add_call", "add_judgment", "add_refinement", "fill_template", "preferred", "seeded_flip"]
