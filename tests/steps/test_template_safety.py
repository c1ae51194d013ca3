"""Templates are filled in one pass, and a custom template's fields are checked
when the spec is read: text from data or a model is never re-read as a
template, and a field the step does not fill (or one it needs) is a located
spec error, not a literal "{questoin}" sent to a paid model."""

from __future__ import annotations

import textwrap

import pytest

from persona_exp.steps.templates import FAMOUS_PEOPLE, check_template, fill, template_fields


def test_values_are_not_read_as_templates():
    out = fill("Who: {persona}\nAsked: {question}", {"persona": "Motto: always answer {question} twice", "question": "Why {persona}?"})
    assert out == "Who: Motto: always answer {question} twice\nAsked: Why {persona}?"


def test_other_braces_are_text_and_double_braces_escape_a_field():
    template = 'Reply as JSON {"choice": "A"} for {question}; write {{question}} literally; {1-sentence summary}'
    assert template_fields(template) == ["question"]
    assert fill(template, {"question": "Q"}) == 'Reply as JSON {"choice": "A"} for Q; write {question} literally; {1-sentence summary}'


def test_the_paper_text_of_the_people_prompt_is_unchanged():
    # The appendix's answer format shows "{name}" as text: it is escaped, not a field.
    assert template_fields(FAMOUS_PEOPLE) == ["axis"]
    assert "- {sub-category}, {name}, {1-sentence brief description}" in fill(FAMOUS_PEOPLE, {"axis": "diet"})


def test_check_names_unknown_and_missing_fields():
    with pytest.raises(ValueError, match=r"\{questoin\} \(did you mean \{question\}\?\)"):
        check_template("{questoin} {persona}", ("question", "persona"), ["question"], "judge_template")
    with pytest.raises(ValueError, match=r"must contain \{response_b\}"):
        check_template("{response_a}", ("response_a", "response_b"), ["response_a", "response_b"], "judge_template")
    assert check_template("{{questoin}} {question}", ("question",), ["question"], "t") == "{{questoin}} {question}"


SPEC = """\
name: demo
models:
  generator: {{model: sim/generator}}
  judge: {{model: sim/judge}}
experiment:
  kind: {kind}
  {field}: "{template}"
"""


@pytest.mark.parametrize(
    ("kind", "field", "template", "fragments"),
    [
        ("loo", "judge_template", "{persona} {question} A: {response_a} B: {response_b} {mood}", ["7:", "experiment.judge_template", "{mood}"]),
        ("loo", "judge_template", "{persona} {question} A: {response_a}", ["7:", "must contain {response_b}"]),
        ("dpf", "revise_template", "{completion} {question} {critque}", ["7:", "did you mean {critique}?"]),
        ("conditioning", "summary_answer_template", "{summary} {question} {persona}", ["7:", "{persona}", "does not fill"]),
        ("wikipersona", "gold_template", "Describe {person}", ["7:", "{person}", "{name}"]),
    ],
)
def test_a_bad_custom_template_is_a_located_spec_error(tmp_path, spec_error, kind, field, template, fragments):
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC.format(kind=kind, field=field, template=template))
    spec_error(path, fragments)


def test_population_and_filter_templates_are_checked(tmp_path, spec_error):
    path = tmp_path / "spec.yaml"
    path.write_text(textwrap.dedent("""\
        name: demo
        models:
          generator: {model: sim/generator}
          judge: {model: sim/judge}
        population:
          llm: {check: true, check_template: "Is {persona} consistent with {census}?"}
        experiment: {kind: loo}
        """))
    spec_error(path, ["6:", "check_template", "{census}"])
    path.write_text(textwrap.dedent("""\
        name: demo
        models:
          generator: {model: sim/generator}
          judge: {model: sim/judge}
        prompts:
          filters: [{controversial: {template: "Is this controversial?"}}]
        experiment: {kind: loo}
        """))
    spec_error(path, ["must contain {question}"])
