"""Prompts: every exemplar answer parses back to its own label with the task's parser (so the parser reads
fresh teachers and the released PaLM text alike); custom exemplars; the request hash is the cache key."""
import pytest

from dss.core.errors import DataError
from dss.tasks import get_task
from dss.tasks.base import Example
from dss.teacher import prompts


@pytest.mark.parametrize("name", ["anli1", "esnli", "cqa", "svamp"])
def test_builtin_exemplars_parse_back_to_their_labels(name):
    template, task = prompts.BUILTIN[name], get_task(name)
    assert 6 <= len(template.exemplars) <= 10
    for user, answer in template.exemplars:
        ex = None
        if name == "cqa":  # the parser may map a bare letter through the example's choices
            choices = [ln[4:] for ln in user.splitlines() if ln.startswith("(")]
            ex = Example("x", user, "", meta={"question": "", "choices": choices})
        parsed = task.parse_completion(answer, ex)
        assert parsed.label, (name, answer)
        assert parsed.rationale and parsed.label not in ("", None)
        # the label is the last thing the answer says, in the task's format
        assert parsed.label in answer
        # and the same text followed by a PaLM-style continuation parses identically
        cont = {"anli1": "\n\nPremise: x\nHypothesis: y", "esnli": "\n\nPremise: x\nHypothesis: y",
                "cqa": "\n\nQ: next?\nAnswer Choices:\n(a) z", "svamp": "\n\nQ: more?\nA: ..."}[name]
        assert task.parse_completion(answer + cont, ex) == parsed


def test_nli_exemplars_cover_every_label():
    for name in ("anli1", "esnli"):
        task = get_task(name)
        labels = {task.parse_completion(a).label for _, a in prompts.BUILTIN[name].exemplars}
        assert labels == {"entailment", "neutral", "contradiction"}


def test_svamp_exemplar_expressions_are_right():
    from dss.core.metrics import safe_eval
    task = get_task("svamp")
    for _user, answer in prompts.SVAMP.exemplars:
        label = task.parse_completion(answer).label
        stated = answer.split(" = ")[-1].split(" ")[0]  # the last "a = N" in the rationale
        assert safe_eval(label) == float(stated), answer


def test_messages_shape_and_example_last():
    ex = Example("q1", "ignored", "b", meta={"question": "Where is the cat?", "choices": list("vwxyz")})
    msgs = prompts.CQA.messages(ex)
    assert msgs[0]["role"] == "system"
    assert [m["role"] for m in msgs[1:-1]] == ["user", "assistant"] * len(prompts.CQA.exemplars)
    assert msgs[-1] == {"role": "user", "content": "Q: Where is the cat?\nAnswer Choices:\n(a) v\n(b) w\n"
                                                   "(c) x\n(d) y\n(e) z"}
    text = prompts.render_text(msgs)
    assert text.startswith("### system\n") and text.endswith("(e) z")


def test_request_sha_changes_with_every_part_of_the_request():
    msgs = [{"role": "user", "content": "hi"}]
    base = prompts.request_sha("openai:m", msgs, {"temperature": 0.0, "max_tokens": 5, "stop": []})
    assert base == prompts.request_sha("openai:m", msgs, {"temperature": 0.0, "max_tokens": 5, "stop": []})
    others = [prompts.request_sha("openai:n", msgs, {"temperature": 0.0, "max_tokens": 5, "stop": []}),
              prompts.request_sha("openai:m", [{"role": "user", "content": "ho"}],
                                  {"temperature": 0.0, "max_tokens": 5, "stop": []}),
              prompts.request_sha("openai:m", msgs, {"temperature": 0.5, "max_tokens": 5, "stop": []}),
              prompts.request_sha("openai:m", msgs, {"temperature": 0.0, "max_tokens": 6, "stop": []}),
              prompts.request_sha("openai:m", msgs, {"temperature": 0.0, "max_tokens": 5, "stop": ["\n"]})]
    assert base not in others and len(set(others)) == len(others)


def test_custom_exemplars_from_yaml_and_jsonl(tmp_path):
    y = tmp_path / "ex.yaml"
    y.write_text("system: Decide if the review is positive.\nexemplars:\n"
                 "  - {input: 'Great food!', rationale: 'Great is praise.', label: positive}\n"
                 "  - {input: 'Cold soup.', rationale: 'Cold soup is a complaint.', label: negative}\n")
    t = prompts.template_for("custom", y)
    msgs = t.messages(Example("1", "Lovely staff.", "positive"))
    assert msgs[0]["content"] == "Decide if the review is positive."
    assert msgs[2]["content"] == "Great is praise. So the answer is positive."
    assert msgs[-1]["content"] == "Lovely staff."
    parsed = get_task("custom", train_file="unused").parse_completion(msgs[2]["content"])
    assert (parsed.label, parsed.rationale) == ("positive", "Great is praise.")

    j = tmp_path / "ex.jsonl"
    j.write_text('{"input": "2+2?", "rationale": "2 and 2 make 4.", "label": "4"}\n')
    t = prompts.template_for("custom", j)
    assert t.system == prompts.GENERIC_SYSTEM and t.exemplars == (("2+2?", "2 and 2 make 4. So the answer is 4."),)


def test_exemplar_errors_name_the_problem(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"input": "x", "label": "y"}\n')
    with pytest.raises(DataError, match="exemplar 1: field 'rationale'"):
        prompts.template_for("custom", bad)
    with pytest.raises(DataError, match="--exemplars"):
        prompts.template_for("custom", None)
    with pytest.raises(DataError, match="built-in prompt"):
        prompts.template_for("cqa", bad)
