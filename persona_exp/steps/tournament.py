"""Best of n candidates by single elimination (WikiPersonas step 4: the best of
four answers after three pairwise comparisons).

Many brackets run side by side: each round is one stage with the matches of
every bracket, so a round costs one batch of concurrent calls. Entrants meet in
order (0 v 1, 2 v 3, ...; an odd one out gets a bye). A match whose judgment
failed ends its bracket without a winner rather than guessing one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from persona_exp.plan import Plan
from persona_exp.steps.judge import add_judgment, preferred


@dataclass
class Bracket:
    """One tournament: entrant call keys, the judge template's values, and the
    item identity used for the seeded A/B order of each match."""

    entrants: list[str]
    values: Mapping[str, str]
    coin: tuple[Any, ...]
    winner: str | None = None
    matches: list[dict[str, Any]] = field(default_factory=list)  # round, first, second, judge_key, first_is_a, winner


def run_brackets(ctx: Any, source: Plan, step: str, role: str, template: str, brackets: list[Bracket], *, parser: str = "choice") -> None:
    """Plays every bracket to the end, filling ``winner`` and ``matches``.
    ``source`` is the plan holding the entrants' calls."""
    alive = {i: list(b.entrants) for i, b in enumerate(brackets)}  # an empty list: the bracket has no winner
    rnd = 0
    while any(len(e) > 1 for e in alive.values()):
        rnd += 1
        playing = {i: e for i, e in alive.items() if len(e) > 1}
        plan = Plan()
        plan.include(source.calls[k] for e in playing.values() for k in e)
        games: dict[int, list[tuple[str, str, str, bool]]] = {}
        for i, entrants in playing.items():
            for j in range(0, len(entrants) - 1, 2):
                first, second = entrants[j], entrants[j + 1]
                key, first_is_a = add_judgment(plan, ctx, step, role, template, brackets[i].values, first, second,
                                               (*brackets[i].coin, rnd, j), parser=parser)
                games.setdefault(i, []).append((first, second, key, first_is_a))
        results = ctx.run_stage(plan)
        for i, entrants in playing.items():
            winners: list[str | None] = []
            for first, second, key, first_is_a in games[i]:
                won = preferred(results, key, first_is_a)
                winner = None if won < 0 else (first if won else second)
                brackets[i].matches.append({"round": rnd, "first": first, "second": second, "judge_key": key, "first_is_a": first_is_a, "winner": winner})
                winners.append(winner)
            if len(entrants) % 2:
                winners.append(entrants[-1])  # bye
            alive[i] = [] if None in winners else winners  # type: ignore[assignment]
    for i, b in enumerate(brackets):
        b.winner = alive[i][0] if len(alive[i]) == 1 else None
