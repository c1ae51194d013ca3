"""Default prompt templates, after the PERSONA paper (appendix B for critique and
revision) and WikiPersonas (appendix G: people by axis, personal and divergent
questions, chain-of-thought diverse answers, the personal judge, inferred and
gold personas). Every spec can override them; fields in braces are filled per
call: {question}, {persona} (`Key: value` lines), {completion}, {critique},
{response_a}, {response_b}, and the fields named beside each template. A field
is a name in single braces; ``{{name}}`` is written as the literal text
``{name}``, and any other brace (JSON examples, ``{1-sentence description}``)
is text. A spec's template that uses a field its step does not fill, or leaves
out one the default uses, is a spec error (:class:`Templated`). The offline
simulator understands these layouts."""

from __future__ import annotations

import re
from typing import Any, ClassVar, Mapping

from pydantic import ValidationInfo, field_validator

from persona_exp.errors import did_you_mean
from persona_exp.spec.models import Strict

# A field, or an escaped field: {{name}} stands for the text {name}.
_FIELD = re.compile(r"\{\{([A-Za-z_][A-Za-z0-9_]*)\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")


def template_fields(template: str) -> list[str]:
    """The fields a template uses, in order of first use (escaped ones excluded)."""
    return list(dict.fromkeys(m.group(2) for m in _FIELD.finditer(template) if m.group(2)))


def fill(template: str, values: Mapping[str, str]) -> str:
    """Fills the fields in one pass: text that comes from data or a model (a
    persona, an answer) is never read as a template, so a ``{question}``
    inside an answer stays as it is. Fields without a value are left as they are."""

    def one(m: re.Match) -> str:
        if m.group(1):
            return "{" + m.group(1) + "}"
        return values[m.group(2)] if m.group(2) in values else m.group(0)

    return _FIELD.sub(one, template)


def check_template(template: str, fills: tuple[str, ...], required: list[str], what: str) -> str:
    """A custom template uses only fields its step ``fills`` and all the ``required`` ones."""
    used = template_fields(template)
    unknown = [f for f in used if f not in fills]
    if unknown:
        hints = []
        for f in unknown:
            hints.append("{" + f + "}" + did_you_mean(f, fills, show=lambda c: "{" + c + "}"))
        raise ValueError(
            f"the {what} uses {', '.join(hints)}, which this step does not fill; it fills "
            f"{', '.join('{' + f + '}' for f in fills)} (write {{{{{unknown[0]}}}}} for the literal text {{{unknown[0]}}})"
        )
    missing = [f for f in required if f not in used]
    if missing:
        raise ValueError(f"the {what} must contain {', '.join('{' + f + '}' for f in missing)} (filled per call); without it the calls would not see it")
    return template


class Templated(Strict):
    """A spec block with prompt templates. ``TEMPLATE_FIELDS`` names, per
    template field of the block, the fields its step fills; a custom template
    may use those only, and must use every field its default uses."""

    TEMPLATE_FIELDS: ClassVar[Mapping[str, tuple[str, ...]]] = {}

    @field_validator("*")
    @classmethod
    def _template(cls, value: Any, info: ValidationInfo) -> Any:
        fills = cls.TEMPLATE_FIELDS.get(info.field_name or "")
        if fills is None or not isinstance(value, str):
            return value
        default = cls.model_fields[info.field_name].default
        return check_template(value, fills, template_fields(default) if isinstance(default, str) else [], info.field_name)


ANSWER = "{question}"

CRITIQUE = (
    "Examine the COMPLETION: '{completion}' in relation to the DEMOGRAPHIC below and the INSTRUCTION: '{question}'.\n"
    "DEMOGRAPHIC:\n{persona}\n\n"
    "Put yourself in the shoes of DEMOGRAPHIC. The demographic prefers short answers. If you give a long suggestion, "
    "they will hate it. Identify the ways the completion both does and does not resonate with the demographic. "
    "Provide a concise explanation, quoting directly from the demographic and completion to illustrate your evaluation. "
    "Think step by step about how you will make the response shorter or the same length before providing your evaluation "
    "and suggestions. Similarly, make sure that the response given is still relevant to the INSTRUCTION.\n"
    "Format: EVALUATION: ... SUGGESTIONS: ...\nDONE"
)

REVISE = (
    "Revise the COMPLETION: '{completion}', with respect to INSTRUCTION: '{question}' based on the CRITIQUE: '{critique}'. "
    "Provide a revision of the completion, do not make ANY references to the exact preferences or attributes of the "
    "demographic. Remain subtle and indirect in your revision. Make sure your response has less tokens than the original "
    "completion. If you make it longer you are a BAD CHATGPT.\n"
    "Format: REVISED PREFERENCE: ...\nDONE"
)

JUDGE = (
    "You are role-playing the following person:\n{persona}\n\n"
    "This person asked: {question}\n\n"
    "Response A: {response_a}\n\n"
    "Response B: {response_b}\n\n"
    "Which response would this person prefer? Answer with exactly one letter, A or B."
)

# Conditioning methods (PERSONA bench): how the persona reaches the answering model.
ANSWER_WITH_PERSONA = (
    "You are answering a question from this person:\n{persona}\n\n"
    "Question: {question}\n\n"
    "Answer the question directly, in a way that suits this person."
)

ANSWER_WITH_COT = (
    "You are answering a question from this person:\n{persona}\n\n"
    "Question: {question}\n\n"
    "Think step by step about what matters to this person, then give your answer after 'ANSWER:'."
)

SUMMARIZE_ATTRIBUTES = (
    "Here is a person:\n{persona}\n\n"
    "Question: {question}\n\n"
    "List the attributes of this person that are relevant to the question, one 'Key: value' per line, and nothing else."
)

ANSWER_WITH_SUMMARY = (
    "You are answering a question from a person with these key facts:\n{summary}\n\n"
    "Question: {question}\n\n"
    "Answer the question directly, in a way that suits this person."
)

CRITIC_PERSONALIZATION = (
    "You are a strict critic of personalized answers.\n"
    "The person asking:\n{persona}\n\n"
    "Question: {question}\n\n"
    "Response: {response}\n\n"
    "Does the response need revision to serve this person well? "
    'Reply with JSON only: {"needs_revision": true} or {"needs_revision": false}.'
)

CRITIC_HELPFULNESS = (
    "You are a strict critic of helpful answers.\n"
    "Question: {question}\n\n"
    "Response: {response}\n\n"
    "Does the response need revision to be helpful? "
    'Reply with JSON only: {"needs_revision": true} or {"needs_revision": false}.'
)

# Population and prompt curation (PERSONA 3.1 and 3.2): zero-shot yes/no checks
# and open-ended persona fields. {persona} is `Key: value` lines.
CONSISTENCY = (
    "Here is a demographic profile of a person:\n{persona}\n\n"
    "Could one real person have all of these attributes at the same time? Look for contradictions, "
    "for example a child with a graduate degree or a large income, or a job that does not fit the age or education.\n"
    "Answer with one word: yes (the profile is consistent) or no (it is not)."
)

# {age} is the persona's age in words ("34 years old", "under 1 year old"): stated on its own so that
# the text suits the age (a toddler's mannerisms, an old person's pastimes).
OPEN_FIELD = (
    "Here is a person:\n{persona}\n\n"
    "This person is {age}. Write this person's {field} in one or two sentences that fit everything above "
    "and suit someone of that age. Reply with the text only."
)

CONTROVERSIAL = (
    "Is the following question controversial, that is, would thoughtful people answer it differently "
    "because their values, beliefs or circumstances differ?\n\n"
    "Question: {question}\n\n"
    "Answer with one word: yes or no."
)

# WikiPersonas (appendix G). {name}, {axis}, {n}, {names}, {categories}, {axes} are filled per call.
FAMOUS_PEOPLE = (
    "Individual preferences may differ in many axis. Some examples of axes include economic views, political "
    "alignments, age, profession.\n\n"
    "Take {axis} as an example axis, come up with a few (at most five) sub-categories within this axis. Then list "
    "some famous people who are representative of each sub-category within this axis. Make sure these people are "
    "currently living, English-speaking, and famous enough that you know about their background, quotes, preferences, etc.\n\n"
    "Please respond in the following format:\n- {sub-category}, {{name}}, {1-sentence brief description}"
)

PERSONAL_QUESTIONS = (
    "Imagine you are a general-purpose AI assistant. Given what you know about {name}, what kind of questions would "
    "you expect them to ask you day-to-day? Provide {n} examples.\n\n"
    "- Make sure the questions are creative and diverse (in terms of topic, length, specificity, etc.) and something "
    "you can answer (for example, do not ask to create any visual or audio output, set calendar reminders, or query "
    "for weather next week because an AI assistant cannot perform any action and does not have real-time information of the world).\n"
    "- The questions do not have to be exclusively dependent on their profession, or what they are known for.\n"
    "- We provide you with a list of categorization for you to optionally base your questions on: {axes}\n"
    "- Questions can be broad or specific. If a question is specific, make sure it is grounded and very detailed.\n"
    "- Do NOT generate a question they likely know the answer to.\n"
    "- Try to generate questions where {name} would have different preference over the response than the general "
    "public (subjective questions, questions with no single best answer, questions with answer that differs between "
    "situation and person, etc.)\n\n"
    "Now, provide {n} questions that {name} might ask, as a numbered list."
)

DIVERGENT_QUESTIONS = (
    "Imagine you are a general-purpose AI assistant. Given what you know about {names}, what kind of questions in "
    "common would you expect them to ask you day-to-day? Provide {n} examples.\n\n"
    "- Note that these people chosen based on their {axis} categories: {categories}, you should base your questions "
    "around this topic, but do NOT reveal their {axis} categories, or their preferences in the questions.\n"
    "- Focus on the questions they might ask in common, but expect different answers.\n"
    "- Make sure the questions are creative and diverse (in terms of topic, length, specificity, etc.) and something "
    "you can answer.\n"
    "- Do NOT generate questions which requires additional information from the user. Users do not assume you know "
    "these information about them.\n"
    "- Try to generate questions where they would have different preference over the response than each other "
    "(subjective questions, questions with no single best answer, questions with answer that differs between "
    "situation, people, and sub-divisions in {axis}, etc.)\n\n"
    "Now, provide {n} questions that {names} might ask IN COMMON, as a numbered list."
)

COT_RESPONSE = (
    "You are a helpful assistant. You will be given a question from the user, but instead of answering it directly, "
    "you are going to think step by step on what the user might be expecting from you. Individual preferences may "
    "differ along many axis (e.g., religion, political views). In this task, we define the following different axis:\n\n"
    "{axes}.\n\n"
    "Choose an axis from above that is the most relevant to the question being asked, then come up with a few (at "
    "most eight) categories within this axis. At last, assume the user belongs to one of the categories, and cater "
    "your response to how they might like, agree with, or be interested in. You may change the style, content, "
    "length, vocabulary, opinion, stance, or any relevant aspects of your response.\n\n"
    "Please respond in the following format:\n\n"
    "Axis: {axis chosen}\n\nCategories: {list of categories}\n\nChosen category: {category chosen}\n\n"
    "Response: {specific response for the person of the category}\n\n"
    "User question: {question}"
)

# WikiPersonas' personal judge (G.4): its opening and the part after the
# person, shared with the judge that predicts a choice from a prefix alone.
PERSONAL_JUDGE_OPENING = (
    "You are a helpful assistant that selects the output that best follows the instruction. You will be asked to "
    "simulate a person's preference given a question this person asks.\n\n"
)
PERSONAL_JUDGE_ANSWERS = (
    "Input: {question}\n\n"
    "Output (a): {response_a}\n\n"
    "Output (b): {response_b}\n\n"
    'Your answer should be a JSON object with the fields "Concise explanation" and "Output (a) is better than '
    'Output (b)", a boolean; always make a decision, even if both are wrong (choose the least bad) or equal.'
)
PERSONAL_JUDGE = (
    PERSONAL_JUDGE_OPENING
    + "Instruction: Please simulate the preference of this person over the answers for the question below.\n{persona}\n\n"
    + PERSONAL_JUDGE_ANSWERS
)

PREFIXED_ANSWER = (
    "Here is what we know about the user:\n{prefix}\n\n"
    "Answer the user's question in the way this user would prefer.\n"
    "Question: {question}"
)

INFER_PERSONA = (
    "Given a few questions a user asks an AI assistant, and their preference over two different responses, can you "
    "infer a few things about this person?\n\n"
    "Given your deduction, can you further guess what their online persona / preferences / personal values might be "
    "like. For example, how might they interact with a personal AI assistant? What kind of answers might they prefer? "
    "What opinions might they hold? What values do they support? Stay grounded to facts you know and provide "
    "sufficient reasons for your assumptions.\n\n"
    "{examples}\n\n"
    "Respond with two short paragraphs, one for user basic information, and one for preferences."
)

GOLD_PERSONA = (
    "Given the name of a famous person, can you describe this person with a few sentences?\n\n"
    "Given your description, can you guess what their online persona / preferences / personal values might be like. "
    "For example, how might they interact with a personal AI assistant? What kind of answers might they prefer? What "
    "opinions might they hold? What values do they support? Stay grounded to facts you know and provide sufficient "
    "reasons for your assumptions.\n\n"
    "The person is {name}\n\n"
    "Respond with two short paragraphs, one for user basic information, and one for preferences."
)

# persona-bench's debate critic. Neither PERSONA paper prints debate prompts;
# these are written for persona-exp in the style of the critics above: two
# debaters argue over one answer ({response}) for `rounds` rounds ({debate} is
# the transcript so far), then a judge decides.
DEBATE_FOR = (
    "Two critics debate whether a response serves this person well. You are critic A: defend the response.\n"
    "The person asking:\n{persona}\n\n"
    "Question: {question}\n\n"
    "Response: {response}\n\n"
    "Debate so far:\n{debate}\n\n"
    "In at most three sentences, argue why this response already suits this person, answering critic B's points if there are any."
)

DEBATE_AGAINST = (
    "Two critics debate whether a response serves this person well. You are critic B: find its faults.\n"
    "The person asking:\n{persona}\n\n"
    "Question: {question}\n\n"
    "Response: {response}\n\n"
    "Debate so far:\n{debate}\n\n"
    "In at most three sentences, argue what this response misses for this person, answering critic A's points if there are any."
)

DEBATE_JUDGE = (
    "You are the judge of a debate between two critics about a personalized answer.\n"
    "The person asking:\n{persona}\n\n"
    "Question: {question}\n\n"
    "Response: {response}\n\n"
    "The debate:\n{debate}\n\n"
    "Weigh both critics' arguments. Does the response need revision to serve this person well? "
    'Reply with JSON only: {"needs_revision": true} or {"needs_revision": false}.'
)

