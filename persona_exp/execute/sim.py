"""The offline simulated models `sim/judge` and `sim/generator`.

A SIMULATOR, not a stand-in for a language model: it exists so experiments run
offline (dry runs, CI, power analysis, A/A tests before spending money) and so
analyses can be checked against effects planted on purpose. Its answers are
deterministic functions of the prompt, the `sim` settings, the temperature and
the sample index (``draw``, ``replicate``).

How it decides. An answer text has a feature vector (hashed words, 16 numbers).
Every (attribute, value) pair of a persona has a seeded preference vector; the
persona's utility for an answer is ``quality`` times a shared quality term (a
seeded taste every persona of the world has; ``quality`` defaults to 1, and 0
switches it off) plus, per attribute, ``effect[attribute] * preference .
features``. `sim/judge` picks the answer of higher utility after adding
logistic noise. `sim/generator` writes a plain
answer to a question, a critique listing what the answer misses for the
persona, and a revision that puts in the one sentence (among
``1 + 7 * strength`` candidates) the persona's preferences favour most. A plain
answer (no persona) ends with the sentence a reader drawn for its question favours.

No shortcuts. Features are the mean over an answer's words, so a longer answer
is neither better nor worse by construction: the judge does not prefer length
as such, in any seeded world. The generator tailors toward the persona's own
preference terms, never toward the shared quality term (a model cannot know
the judge's taste from a user id), so a prefix that says nothing about the
judge's persona (WikiPersonas' opaque `tag`) wins no more than no prefix; a
condition wins only through what it tells about the person the judge plays
(the judge's ``effects``). With ``default_effect: 0`` and ``quality: 0`` nothing
is planted at all: the judge's verdicts are its noise, so no condition can be
told apart (with the quality term on, an answer can be better for everyone,
and a condition whose answers happen to be so gains a small real edge). A
revision adds the tailoring sentence to the plain answer (longer) or keeps only
the answer's opener before it (shorter) by a seeded coin that comes up
"longer" with probability ``longer_revisions`` (default 0.5), so the length of
a DPF pair says nothing about which answer is the chosen one.

Reward scores. A prompt that asks for a score of one response ("one number from
1 ... to 10", WikiPersonas' reward filter) gets the response's utility for the
persona the prompt shows (the shared quality term alone when it shows none)
plus logistic noise, squashed by a logistic onto the asked scale (1 to 10 when
none is named: ``low + (high - low) / (1 + exp(-u / 4))``), two decimals.
`sim/judge` and `sim/generator` both answer it. So a reward filter offline keeps
the candidates of higher simulated utility, as far as the noise lets it.

Debates (persona-bench's debate critic). The debaters are `sim/generator`
("You are critic A" defends the response, "You are critic B" finds its
faults). Each quotes what it argues for: critic A the response's sentence the
persona's preferences favour most, critic B the candidate tailoring sentence
not in the response that the persona would favour most at the end of the plain
answer (the candidates are drawn anew per prompt, so per round). The debate
judge (`sim/judge` given a transcript of "Critic A (round n): ..." arguments)
weighs the response against the strongest answer B argues for (the plain answer
ending with one of B's quoted sentences, the best for the judge's persona; the
plain answer when B quotes none) plus a persuasion term: logistic noise of the
judge's ``noise`` seeded by all the arguments. Without arguments a critic
compares with the plain answer, its noise seeded by the response alone. So
debate verdicts differ from the plain critic's, the same arguments give the
same verdict, and a planted preference still decides on average.

Randomness, knob by knob (every knob is part of the call key, so changing one
reruns exactly the calls of that role):

* ``sim.seed`` fixes the simulated world: preference vectors, quality and noise.
  (``sim.quality``, the weight of the shared quality term, is left out of the
  call key at its default of 1, so keys from before the knob stay valid.)
* ``sim.draw`` (default 0) and the plan's ``replicate`` index pick another
  sample of the same request: the judge's and critic's logistic noise, the
  consistency check's coin, and the generator's plain answer, candidate
  sentences and generated questions are drawn anew. Two runs that differ only
  in ``models.judge.sim.draw`` are an A/A test of the judge. Draw 0 and
  replicate 0 give the answers the simulator has always given.
* ``temperature`` (the role's own) adds sampling noise on top: the judge adds
  a second logistic term of scale ``noise * temperature``; the generator picks
  its candidate sentence from a softmax of the candidates' scores divided by the
  temperature instead of taking the best one. Temperature 0 adds nothing and
  is deterministic for a given draw; plain answers do not depend on it.

Where it looks. The runner passes the filled slots of a call (`slots`): the
judge's two answers are ``response_a`` and ``response_b``, a critic's answer is
``response``, so the wording around them does not matter; the persona is read
from the `Key: value` lines of the rest of the prompt (a block of two or more
such lines wins over lone lines such as "Note: ..."). Without slots (litellm's
custom-provider path, where only text arrives), answers are found after
`Response A:` / `Response B:` (or WikiPersonas' `Output (a):` / `Output (b):`,
a critic's `Response:`) at the start of a line, each ending at the next marker
or the first blank line. Generator prompts are read through the markers of the
default templates (`INSTRUCTION:`, `COMPLETION:`, `CRITIQUE:`, the words
"critique"/"revise", "Chosen category:", "might ask", ...). Prompts that ask
for JSON get JSON back; "Answer with one word: yes or no" gets yes or no: a
controversy check says yes when the question asks for a judgment (word cues),
a consistency check says no for a seeded ``inconsistent_rate`` share of
profiles. In-context examples (`Preferred Response:` sections, or "prefers
answers like" lines) steer an answer toward their word features, a crude model
of few-shot learning.
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
REF_WORDS = 30  # about a plain answer's length: its features keep the scale the preference vectors assume
_WORD = re.compile(r"[a-z0-9']+")
_ATTR_LINE = re.compile(r"[ \t]*[-*]?[ \t]*([A-Za-z][A-Za-z0-9 _/()'-]{0,60}):[ \t]*(\S.*?)[ \t]*")
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
    """Hashed word features: 16 numbers, the mean of the words' +-1 codes,
    scaled so that an answer of ``REF_WORDS`` words has entries of about N(0, 1).
    A mean keeps the expected utility of an answer independent of its length
    (a sum over the square root of the word count would scale a world's average
    taste for its sentences with the square root of their number, so longer
    answers would win, or lose, in every comparison of that world)."""
    words = _WORD.findall(text.lower())
    if not words:
        return np.zeros(DIM)
    hashes = np.fromiter((xxhash.xxh3_64_intdigest(w.encode()) for w in words), dtype=np.uint64, count=len(words))
    bits = ((hashes[:, None] >> np.arange(DIM, dtype=np.uint64)) & np.uint64(1)).astype(np.float64)
    return (2.0 * bits - 1.0).mean(axis=0) * math.sqrt(REF_WORDS)


@lru_cache(maxsize=65536)
def _vector(seed: int, *parts: str) -> np.ndarray:
    """A seeded preference vector; N(0, 1) entries put one attribute's pull on a
    pair of answers at a standard deviation of about 2, against logistic noise
    of standard deviation 1.8 at ``noise = 1``."""
    return np.random.default_rng(_h(seed, *parts)).standard_normal(DIM)


@lru_cache(maxsize=65536)
def _norm_attr(name: str) -> str:
    return re.sub(r"[\s_-]+", " ", name.strip().lower())


def persona_attributes(text: str) -> dict[str, str]:
    """`Key: value` lines of a prompt (markers of the templates excluded). A
    persona is a block of such lines; when a block of two or more exists, lone
    lines elsewhere (a template's "This person asked: ..." or "Note: ...") are
    wording, not attributes."""
    runs: list[list[tuple[str, str]]] = []
    last = -2
    for i, line in enumerate(text.splitlines()):
        m = _ATTR_LINE.fullmatch(line)
        if not m:
            continue
        if i != last + 1:
            runs.append([])
        last = i
        k, value = _norm_attr(m.group(1)), m.group(2)
        if k not in _SKIP_KEYS and not k.startswith(("user question", "output (")) and len(k.split()) <= 5 and len(value) < 200:
            runs[-1].append((k, value.strip()))
    blocks = [r for r in runs if len(r) >= 2]
    return {k: v for run in (blocks or runs) for k, v in run}


class Simulator:
    """Utility model shared by the judge and the generator for one `sim` setting."""

    def __init__(self, settings: Mapping[str, Any] | None = None, replicate: int = 0, temperature: float = 0.0):
        s = dict(settings or {})
        self.replicate = replicate
        self.draw = int(s.get("draw", 0))
        self.temperature = max(float(temperature or 0.0), 0.0)
        # Extra hash parts of a new sample; none for draw 0, replicate 0 (the original answers).
        self.sample: tuple[int, ...] = (self.draw, replicate) if (self.draw or replicate) else ()
        self.inconsistent_rate = float(s.get("inconsistent_rate", 0.085))
        self.seed = int(s.get("seed", 0))
        self.effects = {_norm_attr(k): float(v) for k, v in (s.get("effects") or {}).items()}
        self.default_effect = float(s.get("default_effect", 1.0))
        self.noise = float(s.get("noise", 1.0))
        self.strength = float(s.get("strength", 1.0))
        self.longer_revisions = float(s.get("longer_revisions", 0.5))
        self.quality = float(s.get("quality", 1.0))  # weight of the shared quality term in `utility`

    def effect(self, attribute: str) -> float:
        return self.effects.get(_norm_attr(attribute), self.default_effect)

    def preference(self, answer: str, persona: Mapping[str, str]) -> float:
        """The persona's own part of the utility: what tailoring can aim at."""
        phi = features(answer)
        u = 0.0
        for attr, value in persona.items():
            e = self.effect(attr)
            if e:
                u += e * float(_vector(self.seed, attr, value.lower()) @ phi)
        return u

    def quality_term(self, answer: str) -> float:
        """The shared quality of an answer (unweighted): the taste every persona of this world has."""
        return float(_vector(self.seed, "quality") @ features(answer))

    def utility(self, answer: str, persona: Mapping[str, str]) -> float:
        """What the judge weighs: ``quality`` times the shared quality term, plus the persona's preferences."""
        return self.quality * self.quality_term(answer) + self.preference(answer, persona)

    def _uniform(self, *parts: object) -> float:
        u = (_h(self.seed, *parts, *self.sample) >> 11) * 2.0**-53
        return min(max(u, 1e-12), 1 - 1e-12)

    def _noise(self, *parts: object) -> float:
        """Logistic noise for one decision (seeded by what is decided, the draw and
        the replicate), plus sampling noise of scale ``temperature``."""
        u = self._uniform("noise", *parts)
        out = math.log(u / (1 - u))
        if self.temperature > 0:
            v = self._uniform("temperature", *parts)
            out += self.temperature * math.log(v / (1 - v))
        return self.noise * out

    def _choose(self, cands: list[str], scores: list[float], *parts: object) -> str:
        """The best candidate at temperature 0; otherwise a seeded draw from the
        softmax of score / temperature."""
        if self.temperature <= 0:
            return cands[int(np.argmax(scores))]
        z = np.asarray(scores) / self.temperature
        p = np.exp(z - z.max())
        cum = np.cumsum(p / p.sum())
        return cands[min(int(np.searchsorted(cum, self._uniform("pick", *parts))), len(cands) - 1)]

    def yes_no(self, prompt: str) -> str:
        """A zero-shot classifier: controversial questions, consistent profiles."""
        if "controversial" in prompt.lower():
            words = set(_WORD.findall(_question(prompt).lower()))
            return "yes" if words & _JUDGMENT_CUES else "no"
        return "no" if self._uniform("consistent", prompt) < self.inconsistent_rate else "yes"

    def judge(self, prompt: str, slots: Mapping[str, str] | None = None) -> str:
        """A pairwise verdict (the answers from ``slots`` when given, else found
        in the text), a critic's verdict, or a yes/no check."""
        slots = slots or {}
        frame = _blank(prompt, tuple(slots.values()))  # what the template asks, whatever the answers say
        if _YES_NO in frame:
            return self.yes_no(prompt)
        if "needs_revision" in frame and ("response" in slots or _answer(prompt, "Response:") is not None):
            return self.critic(prompt, slots)
        if _asks_score(frame) and ("response" in slots or _answer(prompt, "Response:") is not None):
            return self.score(prompt, slots)
        personal = "Output (a)" in frame
        if "response_a" in slots and "response_b" in slots:
            a, b = slots["response_a"].strip(), slots["response_b"].strip()
        else:
            found = _pair(prompt, *(("Output (a):", "Output (b):") if personal else ("Response A:", "Response B:")))
            if found is None:
                return "I cannot find Response A and Response B to compare."
            a, b = found
            frame = _blank(prompt, found)
        persona = persona_attributes(frame)
        delta = self.utility(a, persona) - self.utility(b, persona) + self._noise("judge", sorted(persona.items()), a, b)
        if personal:  # WikiPersonas' judge: JSON saying whether output (a) is better
            return json.dumps({"Concise explanation": "Chosen by the simulator's utility.", "Output (a) is better than Output (b)": bool(delta > 0)})
        choice = "A" if delta > 0 else "B"
        if "json" in frame.lower():
            return json.dumps({"choice": choice})
        return choice

    def critic(self, prompt: str, slots: Mapping[str, str] | None = None) -> str:
        """A critic's verdict on one response: it needs revision when it serves the
        persona (if one is shown) worse than a plain answer would, after noise;
        with a debate in the prompt, worse than what critic B argues for."""
        slots = slots or {}
        response = slots["response"].strip() if "response" in slots else _answer(prompt, "Response:") or ""
        arguments = debate_arguments(prompt)
        frame = _blank(prompt, (*slots.values(), response, *(text for _, text in arguments)))
        persona = persona_attributes(frame)
        plain = base_answer(_question(frame))
        if arguments:
            return self._debate_verdict(response, persona, plain, arguments)
        margin = self.utility(response, persona) - self.utility(plain, persona) + self._noise("critic", sorted(persona.items()), response, plain)
        return json.dumps({"needs_revision": bool(margin <= 0)})

    def _debate_verdict(self, response: str, persona: Mapping[str, str], plain: str, arguments: list[tuple[str, str]]) -> str:
        """A debate judge's verdict: the response against the strongest answer
        critic B argues for (the plain answer ending with one of B's quoted
        sentences; the plain answer alone when B quotes none), plus a
        persuasion term: logistic noise seeded by every argument, so other
        arguments can sway it."""
        proposals = [plain + " " + q for side, text in arguments if side == "B" for q in _QUOTED.findall(text)]
        rival = max(proposals, key=lambda a: self.utility(a, persona)) if proposals else plain
        persuasion = self._noise("debate", sorted(persona.items()), response, *arguments)
        margin = self.utility(response, persona) - self.utility(rival, persona) + persuasion
        return json.dumps({"needs_revision": bool(margin <= 0)})

    def score(self, prompt: str, slots: Mapping[str, str] | None = None) -> str:
        """A reward model's score of one response: its utility for the persona
        the prompt shows (the shared quality alone when it shows none) plus
        logistic noise, squashed onto the scale the prompt asks for ("from 1
        ... to 10"; 1 to 10 when it names none), two decimals."""
        slots = slots or {}
        response = slots["response"].strip() if "response" in slots else _answer(prompt, "Response:") or ""
        frame = _blank(prompt, (*slots.values(), response))
        persona = persona_attributes(frame)
        u = self.utility(response, persona) + self._noise("reward", sorted(persona.items()), response)
        m = _SCALE.search(frame)
        low, high = (float(m.group(1)), float(m.group(2))) if m and float(m.group(2)) > float(m.group(1)) else (1.0, 10.0)
        return f"{low + (high - low) / (1.0 + math.exp(-u / SCORE_SCALE)):.2f}"

    def argue(self, prompt: str, slots: Mapping[str, str] | None = None) -> str:
        """A debater's argument over a response (persona-bench's debate critic).
        Critic A, defending it, quotes the response's sentence the persona
        favours most; critic B, finding its faults, quotes the candidate
        sentence (not in the response) the persona would favour most at the
        end of the plain answer: another way to tailor it. Each quotes what
        it argues for, which the judge reads."""
        slots = slots or {}
        response = slots["response"].strip() if "response" in slots else _answer(prompt, "Response:") or ""
        arguments = debate_arguments(prompt)
        frame = _blank(prompt, (*slots.values(), response, *(text for _, text in arguments)))
        persona = persona_attributes(frame)
        if not _AGAINST.search(frame):
            sentences = _sentences(response) or [response]
            best = max(sentences, key=lambda x: self.preference(x, persona))
            return f'This response already suits this person; its strongest point for them is: "{best}"'
        cands = [c for c in self._candidates(prompt) if c not in response] or [c for c in _TAILORED if c not in response]
        plain = base_answer(_question(frame))
        best = self._choose(cands, [self.preference(plain + " " + c, persona) for c in cands], "argue", prompt)
        return f'This response misses what matters to this person; it should also say: "{best}"'

    def _candidates(self, prompt: str, boost: float = 1.0) -> list[str]:
        """The tailoring sentences weighed for a prompt: more with more ``strength``."""
        n = 1 + int(round(7 * max(self.strength, 0.0) * boost))
        start = _h(self.seed, "cand", prompt, *self.sample) % len(_TAILORED)
        return [_TAILORED[(start + i * 7) % len(_TAILORED)] for i in range(min(n, len(_TAILORED)))]

    def _tailor(self, base: str, persona: Mapping[str, str], prompt: str, boost: float = 1.0) -> str:
        """``base`` plus the candidate sentence the persona's preferences favour
        (not the shared quality: that is the judge's, not the persona's)."""
        cands = self._candidates(prompt, boost)
        return base + " " + self._choose(cands, [self.preference(base + " " + c, persona) for c in cands], "tailor", prompt)

    def plain(self, question: str) -> str:
        """The answer without a persona: the plain sentences, then the candidate
        sentence that a reader drawn for this question favours. Ending like a
        tailored answer, picked the same way, it differs from one only in whose
        taste picked the last sentence, so a prefix that tells nothing about the
        judge's persona neither helps nor hurts. (One fixed reader for all
        questions would be a seeded taste that every plain answer shares: in
        some worlds it would beat every prefix, in others lose to them.)"""
        return self._tailor(base_answer(question), {_READER: question}, question)

    def _revise(self, question: str, persona: Mapping[str, str], prompt: str) -> str:
        """A revision: the tailoring sentence added to the plain answer (longer),
        or in place of all but its opener (shorter, as the paper's "less tokens"
        asks), by a seeded coin, so that length does not give the chosen answer away."""
        longer = self._uniform("revision length", prompt) < self.longer_revisions
        return self._tailor(self.plain(question) if longer else _base_sentences(question)[0], persona, prompt)

    def _toward(self, base: str, examples: list[str], prompt: str) -> str:
        """Adds the candidate sentence most like the examples' words."""
        target = np.mean([features(e) for e in examples], axis=0)
        cands = self._candidates(prompt)
        return base + " " + self._choose(cands, [float(features(base + " " + c) @ target) for c in cands], "toward", prompt)

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
            h = _h(self.seed, "questions", prompt, self.replicate, *((self.draw,) if self.draw else ()))
            return "\n".join(f"{i + 1}. {_sim_question(h, i)}" for i in range(n))
        if "chosen category:" in low:
            question = prompt.rsplit("User question:", 1)[-1].strip()
            h = _h(self.seed, "cot", question, self.replicate, *((self.draw,) if self.draw else ()))
            answer = base_answer(f"{question}#{h % 5}") + " " + _TAILORED[(h >> 8) % len(_TAILORED)] + " " + _TAILORED[(h >> 16) % len(_TAILORED)]
            return f"Axis: simulated\nCategories: group 1, group 2, group 3\nChosen category: group {h % 3 + 1}\nResponse: {answer}"
        if "infer a few things about this person" in low:
            liked = " ".join(_examples(prompt))[:300].replace("\n", " ") or "plain answers"
            return f"Basic information: a user who asks an assistant practical questions.\nPreferences: this user prefers answers like: '{liked}'"
        if "given the name of a famous person" in low:
            name = (re.search(r"The person is (.+)", prompt) or re.search(r"(.*)", "someone")).group(1).strip()
            return f"Name: {name}\n{name} is a public figure; the simulator knows nothing more, and answers for them by name."
        return None

    def generate(self, prompt: str, slots: Mapping[str, str] | None = None) -> str:
        low = prompt.lower()
        if _YES_NO in prompt:
            return self.yes_no(prompt)
        wiki = self.wikipersonas(prompt, low)
        if wiki is not None:
            return wiki
        if (slots and "response" in slots) or _RESPONSE_LINE.search(prompt):  # one response to score or argue over
            frame = _blank(prompt, tuple((slots or {}).values()))
            if _asks_score(frame):
                return self.score(prompt, slots)
            if _DEBATER_ASK.search(frame):
                return self.argue(prompt, slots)
        question = _question(prompt)
        asked = question + (f"#{self.replicate}" if self.replicate else "") + (f"@{self.draw}" if self.draw else "")
        base = base_answer(asked)
        persona = persona_attributes(prompt)
        if "write this person's" in low:
            h = _h(self.seed, "field", prompt, *self.sample)
            return f"{_TAILORED[h % len(_TAILORED)]} {_TAILORED[(h >> 8) % len(_TAILORED)]}"
        examples = _examples(prompt)
        if examples:
            return self._toward(base, examples, prompt)
        if "revise" in low or "revision" in low:
            return f"REVISED PREFERENCE: {self._revise(asked, persona, prompt)}\nDONE"
        if "critique" in low or "examine the completion" in low:
            # The critique restates who the reader is, so a revision prompt that
            # only sees the critique (as in the paper) can still be tailored.
            lines = "\n".join(f"{k.title()}: {v}" for k, v in persona.items()) or "Unknown: reader"
            return f"EVALUATION: The answer is generic for this reader:\n{lines}\nSUGGESTIONS: Tie it to their situation.\nDONE"
        if "json" in low:
            return json.dumps({"needs_revision": bool(_h(self.seed, "critic", prompt, *self.sample) % 2)})
        if "relevant" in low and "attributes" in low:
            # "Summarize the relevant attributes": the ones that sway this persona most.
            ranked = sorted(persona.items(), key=lambda kv: (-self.effect(kv[0]), kv[0]))[:3]
            return "\n".join(f"{k.title()}: {v}" for k, v in ranked) or "Nothing specific."
        if persona:
            # Answering for a persona: tailored; thinking step by step weighs more options.
            answer = self._tailor(base, persona, prompt, boost=2.0 if "step by step" in low else 1.0)
            return f"Thinking about who is asking first. ANSWER: {answer}" if "step by step" in low else answer
        return self.plain(asked)


_YES_NO = "Answer with one word: yes"
SCORE_SCALE = 4.0  # utility units per logistic unit of a reward score: about the spread of candidates' quality
_SCORE_ASK = re.compile(r"\b(?:one|a|single) (?:number|score)\b", re.I)
_SCALE = re.compile(r"\bfrom\s+(-?\d+(?:\.\d+)?)\b[^\n]*?\bto\s+(-?\d+(?:\.\d+)?)", re.I)
_AGAINST = re.compile(r"\byou are critic b\b|\bfind (?:its|the) faults\b", re.I)  # the debater who argues against the response
_RESPONSE_LINE = re.compile(r"(?:^|\n)[ \t#*>_-]*Response:")
_DEBATER_ASK = re.compile(r"\byou are critic [AB]\b", re.I)
_QUOTED = re.compile(r'"([^"\n]{3,})"')
_DEBATER = re.compile(r"(?:^|\n)[ \t*#>_-]*Critic ([AB]) \(round \d+\):[ \t]*")
_READER = "reader of a plain answer"  # the attribute whose taste picks a plain answer's last sentence
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


def _asks_score(frame: str) -> bool:
    """Whether a prompt asks for a score on a scale (a reward model's "one
    number from 1 to 10"); a question's "a number of ways" is not one."""
    return bool(_SCORE_ASK.search(frame) and _SCALE.search(frame))


def _sentences(text: str) -> list[str]:
    return [x.strip() for x in re.split(r"(?<=[.!?])\s+", text.strip()) if x.strip()]


def debate_arguments(prompt: str) -> list[tuple[str, str]]:
    """The arguments of a debate transcript in a prompt, in order, as (side,
    text): each follows a "Critic A (round 1):" marker and ends at the next
    marker or the first blank line."""
    marks = list(_DEBATER.finditer(prompt))
    out = []
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(prompt)
        text = _field(prompt[m.end():end])
        if text:
            out.append((m.group(1), text))
    return out


def _base_sentences(question: str) -> tuple[str, str, str]:
    """The plain answer's opener and two body sentences (deterministic in the question)."""
    h = _h("base", question.strip())
    return _OPENERS[h % len(_OPENERS)], _BODIES[(h >> 8) % len(_BODIES)], _BODIES[(h >> 16) % len(_BODIES)]


def base_answer(question: str) -> str:
    """A plain, persona-free answer to a question (deterministic in the question)."""
    return " ".join(_base_sentences(question))


def _starts(text: str, marker: str) -> list[int]:
    """Where ``marker`` opens a line (after spaces or markdown), else anywhere."""
    at_line = [m.end() for m in re.finditer(r"(?:^|\n)[ \t#*>_-]*" + re.escape(marker), text)]
    return at_line or [m.end() for m in re.finditer(re.escape(marker), text)]


def _field(text: str) -> str:
    """A field's value in a text-only prompt: up to the first blank line (the
    template's own sentences around the fields are separate paragraphs)."""
    return re.split(r"\n[ \t]*\n", text.strip(), maxsplit=1)[0].strip()


def _answer(prompt: str, marker: str) -> str | None:
    at = _starts(prompt, marker)
    return _field(prompt[at[0]:]) if at else None


def _pair(prompt: str, first: str, second: str) -> tuple[str, str] | None:
    """The two answers of a text-only judge prompt: after the first marker
    ``first`` and the first ``second`` that follows it."""
    a_at = _starts(prompt, first)
    b_at = [i for i in _starts(prompt, second) if a_at and i > a_at[0]]
    if not a_at or not b_at:
        return None
    return _field(prompt[a_at[0]:b_at[0] - len(second)]), _field(prompt[b_at[0]:])


def _blank(prompt: str, texts: tuple[str, ...]) -> str:
    """The prompt without the answers in it: an answer's `Key: value` lines are
    not the persona's, nor its words the template's. Answers shorter than 8
    characters (a letter, a number) are left, lest they erase template words."""
    for t in sorted({t.strip() for t in texts if len(t.strip()) >= 8}, key=len, reverse=True):
        prompt = prompt.replace(t, " ")
    return prompt


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


def complete(
    model: str, messages: list[dict[str, str]], sampling: Mapping[str, Any], replicate: int = 0, *, slots: Mapping[str, str] | None = None
) -> tuple[str, dict[str, int]]:
    """Answers a chat request as `sim/judge` or `sim/generator`. ``slots`` are
    the call's filled slots (name -> text) when the caller knows them: the
    judge then takes its answers from them instead of searching the text."""
    prompt = "\n\n".join(m["content"] for m in messages)
    sim = Simulator(sampling.get("sim"), replicate, sampling.get("temperature") or 0.0)
    name = model.split("/", 1)[1] if "/" in model else model
    if name == "judge":
        text = sim.judge(prompt, slots)
    elif name == "generator":
        text = sim.generate(prompt, slots)
    else:
        from persona_exp.errors import ExecutionError

        raise ExecutionError(f"unknown simulated model {model!r}; use sim/judge or sim/generator.")
    usage = {"prompt_tokens": len(prompt.split()), "completion_tokens": len(text.split())}
    return text, usage
