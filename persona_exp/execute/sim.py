"""The offline simulated models `sim/judge` and `sim/generator`.

A SIMULATOR, not a stand-in for a language model: it exists so experiments run
offline (dry runs, CI, power analysis before spending money) and so analyses can
be checked against effects planted on purpose. Its answers are deterministic
functions of the prompt and the `sim` settings.

How it decides. An answer text has a feature vector (hashed words, 16 numbers).
Every (attribute, value) pair of a persona has a seeded preference vector; the
persona's utility for an answer is a shared quality term plus, per attribute,
``effect[attribute] * preference . features``. `sim/judge` picks the answer of
higher utility after adding logistic noise seeded by the whole prompt.
`sim/generator` writes a plain answer to a question, a critique listing what the
answer misses for the persona, and a revision that adds the one sentence (among
``1 + 7 * strength`` candidates) the persona's utility favours most.

What it reads: persona attributes as `Key: value` lines; judge prompts with
`Response A:` and `Response B:` (or WikiPersonas' `Output (a):`/`Output (b):`)
sections; generator prompts with the markers of the default templates
(`INSTRUCTION:`, `COMPLETION:`, `CRITIQUE:`, the words "critique"/"revise",
"Chosen category:", "might ask", ...). Prompts that ask for JSON get JSON back;
"Answer with one word: yes or no" gets yes or no: a controversy check says yes
when the question asks for a judgment (word cues), a consistency check says no
for a seeded ``inconsistent_rate`` share of profiles. In-context examples
(`Preferred Response:` sections, or "prefers answers like" lines) steer an
answer toward their word features, a crude model of few-shot learning. A
sample with ``replicate`` > 0 is another draw for the same prompt.
"""

from __future__ import annotations

import json
import math
import re
from functools import lru_cache
from typing import Any, Mapping

import numpy as np
import xxhash

DIM = 16
_WORD = re.compile(r"[a-z0-9']+")
_ATTR_LINE = re.compile(r"^[ \t]*[-*]?[ \t]*([A-Za-z][A-Za-z0-9 _/()'-]{0,60}):[ \t]*(\S.*?)[ \t]*$", re.M)
_SKIP_KEYS = {"instruction", "completion", "critique", "response", "response a", "response b", "question", "format", "revised preference", "evaluation",
              "suggestions", "answer", "demographic", "reply", "input", "preferred response", "axis", "categories", "chosen category", "user question"}

_OPENERS = (
    "There are reasonable arguments on more than one side of this.",
    "The honest answer depends on what you value most.",
    "People who think carefully about this still disagree.",
    "It helps to separate the facts from the values involved.",
    "A short answer is hard, but here is a balanced view.",
    "Much depends on the circumstances of the people affected.",
)
_BODIES = (
    "Supporters point to fairness and to the benefits for those who need help most.",
    "Critics worry about costs, unintended consequences and personal freedom.",
    "Evidence from different places points in different directions.",
    "Small practical details often matter more than the headline principle.",
    "Trust in the institutions involved shapes how people see it.",
    "Long-term effects are easy to underestimate in debates like this.",
    "Local traditions and community norms also play a role.",
    "What works for one household may not work for another.",
)
_TAILORED = (
    "Think about how this would change an ordinary week for you.",
    "Money is a real constraint, so the cheaper path deserves weight.",
    "Your own health and energy are worth protecting first.",
    "Family obligations can reasonably come before abstract principles.",
    "Your faith or personal values can guide the final choice.",
    "Independence matters, so keep your options open.",
    "Steady, predictable routines tend to serve people well here.",
    "New experiences can be worth a measure of risk.",
    "Practical skills from your work may give you an edge.",
    "Neighbors and community groups are often the best support.",
    "Rules exist for reasons, but they can be questioned respectfully.",
    "Plain, direct information beats elaborate theories here.",
    "Time is limited, so choose what fits your schedule.",
    "Personal experience is a legitimate guide alongside statistics.",
    "Consider how this affects the people who depend on you.",
    "A cautious first step lets you change course later.",
    "Tradition offers wisdom that is easy to overlook.",
    "Fairness to everyone involved should weigh heavily.",
    "Security and stability are reasonable priorities.",
    "Learning more before deciding is rarely wasted.",
    "Your independence and self-reliance are strengths here.",
    "Accessibility and comfort matter as much as cost.",
    "Cultural background can shape what a good answer looks like.",
    "Long hours and tiredness are real factors to plan around.",
    "Speaking with someone you trust can clarify the choice.",
    "Local conditions where you live may change the answer.",
    "Freedom to choose for yourself deserves respect.",
    "Modest goals are easier to reach and to keep.",
    "Responsibility toward others can be a guiding principle.",
    "Being practical today does not rule out ideals tomorrow.",
    "Simple language and clear steps make this easier.",
    "The wider public good is also part of the picture.",
)


def _h(*parts: object) -> int:
    return xxhash.xxh3_64_intdigest("\x1f".join(str(p) for p in parts).encode())


@lru_cache(maxsize=65536)
def features(text: str) -> np.ndarray:
    """Hashed word features: 16 numbers, about N(0, 1) each."""
    words = _WORD.findall(text.lower())
    if not words:
        return np.zeros(DIM)
    hashes = np.fromiter((xxhash.xxh3_64_intdigest(w.encode()) for w in words), dtype=np.uint64, count=len(words))
    bits = ((hashes[:, None] >> np.arange(DIM, dtype=np.uint64)) & np.uint64(1)).astype(np.float64)
    return (2.0 * bits - 1.0).sum(axis=0) / math.sqrt(len(words))


@lru_cache(maxsize=65536)
def _vector(seed: int, *parts: str) -> np.ndarray:
    """A seeded preference vector; N(0, 1) entries put one attribute's pull on a
    pair of answers at a standard deviation of about 2, against logistic noise
    of standard deviation 1.8 at ``noise = 1``."""
    return np.random.default_rng(_h(seed, *parts)).standard_normal(DIM)


def _norm_attr(name: str) -> str:
    return re.sub(r"[\s_-]+", " ", name.strip().lower())


def persona_attributes(text: str) -> dict[str, str]:
    """`Key: value` lines of a prompt (markers of the templates excluded)."""
    out: dict[str, str] = {}
    for key, value in _ATTR_LINE.findall(text):
        k = _norm_attr(key)
        if k not in _SKIP_KEYS and not k.startswith(("user question", "output (")) and len(k.split()) <= 5 and len(value) < 200:
            out[k] = value.strip()
    return out


class Simulator:
    """Utility model shared by the judge and the generator for one `sim` setting."""

    def __init__(self, settings: Mapping[str, Any] | None = None, replicate: int = 0):
        s = dict(settings or {})
        self.replicate = replicate
        self.inconsistent_rate = float(s.get("inconsistent_rate", 0.085))
        self.seed = int(s.get("seed", 0))
        self.effects = {_norm_attr(k): float(v) for k, v in (s.get("effects") or {}).items()}
        self.default_effect = float(s.get("default_effect", 1.0))
        self.noise = float(s.get("noise", 1.0))
        self.strength = float(s.get("strength", 1.0))

    def effect(self, attribute: str) -> float:
        return self.effects.get(_norm_attr(attribute), self.default_effect)

    def utility(self, answer: str, persona: Mapping[str, str]) -> float:
        phi = features(answer)
        u = float(_vector(self.seed, "quality") @ phi)
        for attr, value in persona.items():
            e = self.effect(attr)
            if e:
                u += e * float(_vector(self.seed, attr, value.lower()) @ phi)
        return u

    def _noise(self, prompt: str) -> float:
        u = (_h(self.seed, "noise", prompt) >> 11) * 2.0**-53
        u = min(max(u, 1e-12), 1 - 1e-12)
        return self.noise * math.log(u / (1 - u))

    def yes_no(self, prompt: str) -> str:
        """A zero-shot classifier: controversial questions, consistent profiles."""
        if "controversial" in prompt.lower():
            words = set(_WORD.findall(_question(prompt).lower()))
            return "yes" if words & _JUDGMENT_CUES else "no"
        u = (_h(self.seed, "consistent", prompt) >> 11) * 2.0**-53
        return "no" if u < self.inconsistent_rate else "yes"

    def judge(self, prompt: str) -> str:
        if _YES_NO in prompt:
            return self.yes_no(prompt)
        if "needs_revision" in prompt and "Response:" in prompt:
            return self.critic(prompt)
        if "Output (a):" in prompt and "Output (b):" in prompt:
            return self.personal_judge(prompt)
        a, b = _section(prompt, "Response A:"), _section(prompt, "Response B:")
        if a is None or b is None:
            return "I cannot find Response A and Response B to compare."
        head = prompt.split("Response A:", 1)[0]
        persona = persona_attributes(head)
        delta = self.utility(a, persona) - self.utility(b, persona) + self._noise(prompt)
        choice = "A" if delta > 0 else "B"
        if "json" in prompt.lower():
            return json.dumps({"choice": choice})
        return choice

    def personal_judge(self, prompt: str) -> str:
        """WikiPersonas' judge: JSON saying whether output (a) is better."""
        a, b = _section(prompt, "Output (a):"), _section(prompt, "Output (b):")
        persona = persona_attributes(prompt.split("Output (a):", 1)[0])
        delta = self.utility(a or "", persona) - self.utility(b or "", persona) + self._noise(prompt)
        return json.dumps({"Concise explanation": "Chosen by the simulator's utility.", "Output (a) is better than Output (b)": bool(delta > 0)})

    def critic(self, prompt: str) -> str:
        """A critic's verdict on one response: it needs revision when it serves the
        persona (if one is shown) worse than a plain answer would, after noise."""
        response = _section(prompt, "Response:") or ""
        head = prompt.split("Response:", 1)[0]
        persona = persona_attributes(head)
        plain = base_answer(_question(prompt))
        margin = self.utility(response, persona) - self.utility(plain, persona) + self._noise(prompt)
        return json.dumps({"needs_revision": bool(margin <= 0)})

    def _tailor(self, base: str, persona: Mapping[str, str], prompt: str, boost: float = 1.0) -> str:
        n = 1 + int(round(7 * max(self.strength, 0.0) * boost))
        start = (_h(self.seed, "cand", prompt, self.replicate) if self.replicate else _h(self.seed, "cand", prompt)) % len(_TAILORED)
        cands = [_TAILORED[(start + i * 7) % len(_TAILORED)] for i in range(min(n, len(_TAILORED)))]
        return base + " " + max(cands, key=lambda c: self.utility(base + " " + c, persona))

    def _toward(self, base: str, examples: list[str], prompt: str) -> str:
        """Adds the candidate sentence most like the examples' words."""
        target = np.mean([features(e) for e in examples], axis=0)
        start = _h(self.seed, "cand", prompt) % len(_TAILORED)
        n = 1 + int(round(7 * max(self.strength, 0.0)))
        cands = [_TAILORED[(start + i * 7) % len(_TAILORED)] for i in range(min(n, len(_TAILORED)))]
        return base + " " + max(cands, key=lambda c: float(features(base + " " + c) @ target))

    def wikipersonas(self, prompt: str, low: str) -> str | None:
        """The WikiPersonas prompts (people, questions, diverse answers, personas); None for others."""
        if "famous people who are representative" in low:
            axis = (re.search(r"Take (.+?) as an example axis", prompt) or re.search(r"(.*)", "axis")).group(1)
            return "\n".join(
                f"- {axis.title()} group {i + 1}, Example Person {axis.title()} {i + 1}{'ab'[j]}, a fictional stand-in the offline simulator made up."
                for i in range(3) for j in range(2)
            )
        if "might ask" in low and "questions" in low:
            m = re.search(r"Provide (\d+) examples", prompt)
            n = int(m.group(1)) if m else 5
            h = _h(self.seed, "questions", prompt, self.replicate)
            return "\n".join(f"{i + 1}. {_sim_question(h, i)}" for i in range(n))
        if "chosen category:" in low:
            question = prompt.rsplit("User question:", 1)[-1].strip()
            h = _h(self.seed, "cot", question, self.replicate)
            answer = base_answer(f"{question}#{h % 5}") + " " + _TAILORED[(h >> 8) % len(_TAILORED)] + " " + _TAILORED[(h >> 16) % len(_TAILORED)]
            return f"Axis: simulated\nCategories: group 1, group 2, group 3\nChosen category: group {h % 3 + 1}\nResponse: {answer}"
        if "infer a few things about this person" in low:
            liked = " ".join(_examples(prompt))[:300].replace("\n", " ") or "plain answers"
            return f"Basic information: a user who asks an assistant practical questions.\nPreferences: this user prefers answers like: '{liked}'"
        if "given the name of a famous person" in low:
            name = (re.search(r"The person is (.+)", prompt) or re.search(r"(.*)", "someone")).group(1).strip()
            return f"Name: {name}\n{name} is a public figure; the simulator knows nothing more, and answers for them by name."
        return None

    def generate(self, prompt: str) -> str:
        low = prompt.lower()
        if _YES_NO in prompt:
            return self.yes_no(prompt)
        wiki = self.wikipersonas(prompt, low)
        if wiki is not None:
            return wiki
        question = _question(prompt)
        base = base_answer(f"{question}#{self.replicate}" if self.replicate else question)
        persona = persona_attributes(prompt)
        if "write this person's" in low:
            h = _h(self.seed, "field", prompt)
            return f"{_TAILORED[h % len(_TAILORED)]} {_TAILORED[(h >> 8) % len(_TAILORED)]}"
        examples = _examples(prompt)
        if examples:
            return self._toward(base, examples, prompt)
        if "revise" in low or "revision" in low:
            return f"REVISED PREFERENCE: {self._tailor(base, persona, prompt)}\nDONE"
        if "critique" in low or "examine the completion" in low:
            # The critique restates who the reader is, so a revision prompt that
            # only sees the critique (as in the paper) can still be tailored.
            lines = "\n".join(f"{k.title()}: {v}" for k, v in persona.items()) or "Unknown: reader"
            return f"EVALUATION: The answer is generic for this reader:\n{lines}\nSUGGESTIONS: Tie it to their situation.\nDONE"
        if "json" in low:
            return json.dumps({"needs_revision": bool(_h(self.seed, "critic", prompt) % 2)})
        if "relevant" in low and "attributes" in low:
            # "Summarize the relevant attributes": the ones that sway this persona most.
            ranked = sorted(persona.items(), key=lambda kv: (-self.effect(kv[0]), kv[0]))[:3]
            return "\n".join(f"{k.title()}: {v}" for k, v in ranked) or "Nothing specific."
        if persona:
            # Answering for a persona: tailored; thinking step by step weighs more options.
            answer = self._tailor(base, persona, prompt, boost=2.0 if "step by step" in low else 1.0)
            return f"Thinking about who is asking first. ANSWER: {answer}" if "step by step" in low else answer
        return base


_YES_NO = "Answer with one word: yes"
# Words by which a question asks for a judgment of value rather than a fact.
_JUDGMENT_CUES = frozenset(
    "should ought better best worse worst right wrong fair unfair moral immoral acceptable justified believe agree disagree "
    "deserve allowed ban legal illegal ethical".split()
)
_SIM_TOPICS = ("staying healthy on a busy schedule", "saving money for the future", "raising children today", "choosing a place to live",
               "talking about politics with family", "finding meaning in work", "eating well without much time", "spending a free weekend",
               "helping the local community", "keeping up with new technology", "handling disagreement with friends", "planning for retirement")
_SIM_STEMS = ("What are some good ways to approach {}?", "How should someone like me think about {}?", "Can you give me practical advice about {}?",
              "What do people most often get wrong about {}?", "Which matters more when it comes to {}: tradition or new ideas?")


def _sim_question(h: int, i: int) -> str:
    k = (h >> (i % 40)) + i * 7919
    return _SIM_STEMS[k % len(_SIM_STEMS)].format(_SIM_TOPICS[(k // len(_SIM_STEMS) + i) % len(_SIM_TOPICS)])


def _examples(prompt: str) -> list[str]:
    """In-context examples of liked answers (`Preferred Response:` sections and
    "prefers answers like: '...'" lines), reduced to what distinguishes them:
    the simulator's own tailoring sentences they contain (an answer's opener
    and body say nothing about who liked it)."""
    out = []
    for part in prompt.split("Preferred Response:")[1:]:
        text = re.split(r"\n\s*(?:#+\s*)?User Question|\n\nRespond with|\n\nAnswer the user", part, maxsplit=1)[0].strip()
        if text:
            out.append(text)
    out += re.findall(r"prefers answers like: '(.+?)'", prompt)
    marked = [s for text in out for s in _TAILORED if s in text]
    return marked or out


def base_answer(question: str) -> str:
    """A plain, persona-free answer to a question (deterministic in the question)."""
    h = _h("base", question.strip())
    return f"{_OPENERS[h % len(_OPENERS)]} {_BODIES[(h >> 8) % len(_BODIES)]} {_BODIES[(h >> 16) % len(_BODIES)]}"


def _section(text: str, marker: str) -> str | None:
    if marker not in text:
        return None
    rest = text.split(marker, 1)[1]
    for stop in ("Response A:", "Response B:", "Output (a):", "Output (b):", "\n\nWhich", "\nWhich", "\n\nAnswer with", "\n\nReply", "\n\nDoes", "\n\nIs ",
                 "\n\nYour answer"):
        if stop in rest:
            rest = rest.split(stop, 1)[0]
    return rest.strip()


def _question(prompt: str) -> str:
    """The question of a prompt: INSTRUCTION: '...', a `Question:` line, or the last line."""
    quoted = _quoted(prompt, "INSTRUCTION:")
    if quoted:
        return quoted
    m = re.search(r"^Question:[ \t]*(.+)$", prompt, re.M)
    return m.group(1).strip() if m else prompt.strip().splitlines()[-1]


def _quoted(text: str, marker: str) -> str | None:
    m = re.search(re.escape(marker) + r"\s*'(.*?)'", text, re.S)
    return m.group(1) if m else None


def complete(model: str, messages: list[dict[str, str]], sampling: Mapping[str, Any], replicate: int = 0) -> tuple[str, dict[str, int]]:
    """Answers a chat request as `sim/judge` or `sim/generator`."""
    prompt = "\n\n".join(m["content"] for m in messages)
    sim = Simulator(sampling.get("sim"), replicate)
    name = model.split("/", 1)[1] if "/" in model else model
    if name == "judge":
        text = sim.judge(prompt)
    elif name == "generator":
        text = sim.generate(prompt)
    else:
        from persona_exp.errors import ExecutionError

        raise ExecutionError(f"unknown simulated model {model!r}; use sim/judge or sim/generator.")
    usage = {"prompt_tokens": len(prompt.split()), "completion_tokens": len(text.split())}
    return text, usage
