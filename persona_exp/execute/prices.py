"""Per-token prices from litellm's bundled table, online and by batch.

Its own module so that both the estimate (execute.budget) and the batch path
(execute.batch), which sits below the runner, can read them.
"""

from __future__ import annotations


def price(model: str, batch: bool = False) -> tuple[float, float] | None:
    """Per-token input and output prices from litellm's bundled table (None if
    unknown). ``batch``: the table's batch prices (``input_cost_per_token_batches``,
    ``output_cost_per_token_batches``) where it lists them; where it does not,
    the online price, an upper bound (not every provider discounts batches)."""
    if model.startswith("sim/"):
        return 0.0, 0.0
    from persona_exp.execute.llm import litellm

    table = litellm().model_cost
    bare = model.split("/", 1)[-1].removeprefix("converse/").removeprefix("invoke/")  # litellm's Bedrock routes are no part of the name
    info = table.get(model) or table.get(bare) or table.get(f"{model.split('/', 1)[0]}/{bare}")
    if not info or info.get("input_cost_per_token") is None:
        return None
    online = float(info["input_cost_per_token"]), float(info.get("output_cost_per_token") or 0.0)
    if not batch:
        return online
    batched = info.get("input_cost_per_token_batches"), info.get("output_cost_per_token_batches")
    return tuple(float(b) if b is not None else o for b, o in zip(batched, online))  # type: ignore[return-value]
