"""Few-shot chain-of-thought prompts: one per benchmark, a generic one for custom tasks.

A prompt is a list of chat messages, `[{"role": "system"|"user"|"assistant", "content": str}, ...]`: the
task instruction, then each exemplar as a user turn (the question) and an assistant turn (rationale and
answer), then the example to answer. Chat servers answer the last turn; both providers take this shape.

The paper's prompts were never released, so the exemplars here were written for this project. Each
exemplar's answer ends the way the released PaLM completions of its task end (see the data README), so the
task's one parser reads PaLM's text and a fresh teacher's text alike:

    anli1  "<rationale> So the answer is <label>."
    esnli  "<rationale>\\nAnswer: <label>"
    cqa    "<rationale> So the answer is (<letter>) <choice text>."
    svamp  "<rationale> The answer is (<expression>)."
    other  "<rationale> So the answer is <label>."          (dss.tasks.generic.parse_generic)
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import yaml

from dss.core.errors import DataError
from dss.tasks.base import Example

Messages = list[dict]  # [{"role": ..., "content": ...}]


@dataclass(frozen=True)
class Template:
    """A task's instruction, exemplars as (user text, assistant text) pairs, and how an example reads."""
    system: str
    exemplars: tuple[tuple[str, str], ...]
    render: Callable[[Example], str]  # Example -> user text

    def messages(self, example: Example) -> Messages:
        out = [{"role": "system", "content": self.system}]
        for user, assistant in self.exemplars:
            out += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
        out.append({"role": "user", "content": self.render(example)})
        return out


# ---------------------------------------------------------------------------------------------- NLI
def _nli_user(premise: str, hypothesis: str) -> str:
    return f"Premise: {premise.strip()}\nHypothesis: {hypothesis.strip()}"


def _nli_render(ex: Example) -> str:
    if "premise" in ex.meta and "hypothesis" in ex.meta:
        return _nli_user(ex.meta["premise"], ex.meta["hypothesis"])
    return ex.input  # already "Premise: ...\nHypothesis: ..."


# (premise, hypothesis, rationale, label): encyclopedia-style premises like ANLI's
_ANLI = [
    ("The Brindle Point Light is a stone lighthouse on the northern coast of Maine. It was built in 1871 and "
     "automated in 1963, when its last keeper retired.",
     "The lighthouse had a keeper until the 1960s.",
     "The premise says the lighthouse was automated in 1963, when its last keeper retired. So a keeper worked "
     "there until 1963, which is in the 1960s.", "entailment"),
    ("Marta Kowalska (born 4 May 1988) is a Polish long-distance runner. She won the bronze medal in the "
     "10,000 metres at the 2014 European Championships.",
     "Marta Kowalska has won an Olympic medal.",
     "The premise mentions only a bronze medal at the 2014 European Championships. It says nothing about the "
     "Olympics, so we cannot tell whether she won an Olympic medal.", "neutral"),
    ("Greenhill is a village in the district of Torridge, Devon, England. At the 2011 census it had a "
     "population of 412.",
     "Greenhill had more than a thousand residents in 2011.",
     "The premise states that Greenhill had a population of 412 at the 2011 census. 412 is fewer than a "
     "thousand, so the hypothesis is false.", "contradiction"),
    ("\"Night Harbor\" is a 1998 crime drama film directed by Alan Reyes and starring Diane Moss. It was shot "
     "in Vancouver but is set in Seattle.",
     "Night Harbor was filmed in Canada.",
     "The premise says the film was shot in Vancouver. Vancouver is a city in Canada, so the film was filmed "
     "in Canada.", "entailment"),
    ("The Orvieto Cup is an annual amateur cycling race held in Umbria, Italy. It was first held in 1979 and "
     "covers about 160 kilometres.",
     "The Orvieto Cup is the oldest cycling race in Italy.",
     "The premise says the race was first held in 1979, but it does not compare it with other Italian races. "
     "Older races may exist, so we cannot tell.", "neutral"),
    ("Samuel Okafor is a Nigerian footballer who plays as a goalkeeper for Enyimba. He has never been capped "
     "by the national team.",
     "Samuel Okafor has played for Nigeria's national team.",
     "The premise states that he has never been capped by the national team, which means he has never played "
     "for it. The hypothesis says he has.", "contradiction"),
    ("The Hawthorne Building is a twelve-storey office tower in downtown Cleveland, completed in 1927. It was "
     "designed by the architect Edith Lang.",
     "A building designed by Edith Lang was finished before 1930.",
     "The premise says Edith Lang designed the Hawthorne Building, which was completed in 1927. 1927 is "
     "before 1930.", "entailment"),
    ("Lake Verity is a reservoir in Oregon created by the Dalton Dam in 1952. It is popular for fishing and "
     "boating.",
     "Swimming is banned at Lake Verity.",
     "The premise says the lake is popular for fishing and boating, but it does not mention swimming or any "
     "ban. So we cannot tell.", "neutral"),
]

ANLI1 = Template(
    system="You are given a premise and a hypothesis. Decide whether the premise entails the hypothesis "
           "(entailment), contradicts it (contradiction), or neither (neutral). Reason briefly from the "
           "premise, then end with \"So the answer is <entailment, neutral or contradiction>.\"",
    exemplars=tuple((_nli_user(p, h), f"{r} So the answer is {lab}.") for p, h, r, lab in _ANLI),
    render=_nli_render)

# image-caption premises like SNLI's
_ESNLI = [
    ("A man in a red jacket is climbing a snowy mountain.", "A man is outdoors in the cold.",
     "A snowy mountain is outdoors, and snow means it is cold.", "entailment"),
    ("Two children are playing with a ball on the beach.", "The children are brother and sister.",
     "Two children playing together are not necessarily siblings.", "neutral"),
    ("A woman is slicing vegetables in a kitchen.", "The woman is sleeping on the couch.",
     "A woman cannot be slicing vegetables in a kitchen and sleeping on a couch at the same time.",
     "contradiction"),
    ("A dog leaps to catch a frisbee in a park.", "An animal is jumping.",
     "A dog is an animal, and leaping is jumping.", "entailment"),
    ("A group of people waits at a bus stop in the rain.", "The people are going to work.",
     "People waiting for a bus could be going anywhere, not necessarily to work.", "neutral"),
    ("An old man sits alone on a bench reading a newspaper.", "A man is surrounded by a crowd of friends.",
     "A man who sits alone is not surrounded by a crowd.", "contradiction"),
    ("A girl in a blue dress plays the violin on a stage.", "A girl is performing music.",
     "Playing the violin on a stage is performing music.", "entailment"),
    ("A cyclist rides down a busy city street.", "The cyclist is racing in the Tour de France.",
     "Riding down a city street does not mean the cyclist is in a race.", "neutral"),
    ("Three women are dancing at a wedding.", "Nobody is dancing.",
     "If three women are dancing, it is false that nobody is dancing.", "contradiction"),
]

ESNLI = Template(
    system="You are given a premise and a hypothesis describing a scene. Decide whether the premise entails "
           "the hypothesis (entailment), contradicts it (contradiction), or neither (neutral). Give a short "
           "reason, then write the answer on its own line as \"Answer: <entailment, neutral or "
           "contradiction>\".",
    exemplars=tuple((_nli_user(p, h), f"{r}\nAnswer: {lab}") for p, h, r, lab in _ESNLI),
    render=_nli_render)


# ---------------------------------------------------------------------------------------------- CQA
def _cqa_user(question: str, choices: list[str]) -> str:
    lines = [f"Q: {question.strip()}", "Answer Choices:"]
    lines += [f"({'abcde'[i]}) {c}" for i, c in enumerate(choices)]
    return "\n".join(lines)


def _cqa_render(ex: Example) -> str:
    if "question" in ex.meta and "choices" in ex.meta:
        return _cqa_user(ex.meta["question"], ex.meta["choices"])
    return f"Q: {ex.input}"


# (question, choices, rationale, answer letter)
_CQA = [
    ("Where would you put a carton of milk to keep it cold?",
     ["pantry", "refrigerator", "table", "backpack", "oven"],
     "The answer must be a place that keeps food cold. Of the above choices, only a refrigerator keeps food "
     "cold.", "b"),
    ("What do people usually do when they are tired at night?",
     ["run", "cook", "sleep", "shout", "swim"],
     "The answer must be something people do to rest when they are tired. Of the above choices, sleeping is "
     "how people rest at night.", "c"),
    ("What might a person feel after winning a big prize?",
     ["sadness", "boredom", "fear", "joy", "hunger"],
     "Winning a big prize is good news, and good news makes people happy. Of the above choices, only joy is a "
     "happy feeling.", "d"),
    ("Where can you borrow books without buying them?",
     ["library", "bookstore", "classroom", "desk", "printing press"],
     "The answer must be a place that lends books. Of the above choices, a library lends books to its "
     "members.", "a"),
    ("If you drop a glass on a hard floor, what is likely to happen to it?",
     ["float", "melt", "grow", "bounce", "break"],
     "Glass is brittle, and a hard floor does not cushion a fall. Of the above choices, breaking is what "
     "happens to brittle things that hit something hard.", "e"),
    ("The farmer needed water for his crops during the dry summer, so he dug what?",
     ["cellar", "well", "grave", "tunnel", "mine"],
     "The farmer needed water. Of the above choices, a well is dug to reach water under the ground.", "b"),
    ("What would you use to see something very small, like a cell?",
     ["telescope", "mirror", "microscope", "camera", "glasses"],
     "Cells are too small to see with the naked eye and need strong magnification up close. Of the above "
     "choices, a microscope magnifies very small things.", "c"),
]

CQA = Template(
    system="Answer the multiple-choice question using common sense. Explain briefly which choice fits and "
           "why, then end with \"So the answer is (<letter>) <choice text>.\"",
    exemplars=tuple((_cqa_user(q, ch), f"{r} So the answer is ({k}) {ch['abcde'.index(k)]}.")
                    for q, ch, r, k in _CQA),
    render=_cqa_render)


# ---------------------------------------------------------------------------------------------- SVAMP
# (problem as in the release: body, newline, question; rationale; expression)
_SVAMP = [
    ("Tom had 23 marbles. He gave 8 marbles to his sister.\nHow many marbles does Tom have now?",
     "Tom started with 23 marbles and gave away 8. So he has 23 - 8 = 15 marbles left.", "23 - 8"),
    ("A baker makes 12 muffins on each tray. She baked 5 trays this morning.\nHow many muffins did she bake?",
     "Each tray has 12 muffins and there are 5 trays. So she baked 12 * 5 = 60 muffins.", "12 * 5"),
    ("There are 48 students going on a trip. Each van can carry 8 students.\nHow many vans are needed?",
     "The 48 students are split into vans of 8. So 48 / 8 = 6 vans are needed.", "48 / 8"),
    ("Lily read 14 pages on Monday and 19 pages on Tuesday. The book has 50 pages.\n"
     "How many pages does she still have to read?",
     "Lily read 14 + 19 = 33 pages. The book has 50 pages, so 50 - 33 = 17 pages are left.",
     "50 - (14 + 19)"),
    ("A shop had some apples. It sold 35 apples and now has 27 apples left.\n"
     "How many apples did the shop have at first?",
     "The shop sold 35 apples and still has 27. So at first it had 35 + 27 = 62 apples.", "35 + 27"),
    ("Each pack of stickers costs 3 dollars. Ben has 21 dollars and buys 4 packs.\n"
     "How much money does Ben have left?",
     "4 packs cost 4 * 3 = 12 dollars. Ben had 21 dollars, so he has 21 - 12 = 9 dollars left.",
     "21 - (4 * 3)"),
    ("Jake has 9 more toy cars than Sam. Jake has 25 toy cars.\nHow many toy cars does Sam have?",
     "Jake has 9 more cars than Sam, so Sam has 9 fewer than Jake. Sam has 25 - 9 = 16 toy cars.", "25 - 9"),
    ("A garden has 6 rows of tulips with 7 tulips in each row. 10 tulips were picked.\n"
     "How many tulips are left in the garden?",
     "There were 6 * 7 = 42 tulips. After 10 were picked, 42 - 10 = 32 are left.", "(6 * 7) - 10"),
]

SVAMP = Template(
    system="Solve the arithmetic word problem step by step, then end with \"The answer is (<expression>).\" "
           "where <expression> uses only numbers from the problem, + - * / and parentheses.",
    exemplars=tuple((f"Q: {q}", f"{r} The answer is ({e}).") for q, r, e in _SVAMP),
    render=lambda ex: f"Q: {ex.input.strip()}")

BUILTIN = {"anli1": ANLI1, "esnli": ESNLI, "cqa": CQA, "svamp": SVAMP}

GENERIC_SYSTEM = ("Answer the question. Think step by step in a few sentences, then end with "
                  "\"So the answer is <answer>.\"")


# ---------------------------------------------------------------------------------------------- custom
def load_exemplars(path) -> list[dict]:
    """User exemplars for the generic template: YAML (a list, or {exemplars: [...]}, optional system:) or
    JSONL, each with `input`, `rationale` and `label`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise DataError(f"{path}: cannot read exemplars: {e.strerror}") from None
    if path.suffix.lower() in (".jsonl", ".json"):
        items = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    items.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise DataError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
    else:
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise DataError(f"{path}: not valid YAML: {e}") from None
        items = loaded.get("exemplars") if isinstance(loaded, dict) else loaded
        if isinstance(loaded, dict) and loaded.get("system"):
            items = [{"system": loaded["system"]}] + list(items or [])
    if not isinstance(items, list) or not items:
        raise DataError(f"{path}: expected a list of exemplars with input, rationale and label")
    for i, item in enumerate(items, 1):
        if not isinstance(item, dict):
            raise DataError(f"{path}: exemplar {i}: expected a mapping, got {type(item).__name__}")
        if "system" in item and len(item) == 1:
            continue
        for key in ("input", "rationale", "label"):
            if not isinstance(item.get(key), (str, int, float)) or str(item[key]).strip() == "":
                raise DataError(f"{path}: exemplar {i}: field {key!r} is missing or empty")
    return items


def generic_template(exemplars: list[dict]) -> Template:
    system = next((e["system"] for e in exemplars if "system" in e and len(e) == 1), GENERIC_SYSTEM)
    pairs = tuple((str(e["input"]).strip(), f"{str(e['rationale']).strip()} So the answer is "
                   f"{str(e['label']).strip()}.") for e in exemplars if "input" in e)
    return Template(system=system, exemplars=pairs, render=lambda ex: ex.input.strip())


def template_for(task_name: str, exemplars_file=None, task_exemplars=None) -> Template:
    """The built-in prompt of a benchmark, or the generic template with the user's exemplars (a file), or
    with exemplars the task itself provides (a task class attribute `exemplars`: dicts of input, rationale,
    label)."""
    if task_name in BUILTIN:
        if exemplars_file:
            raise DataError(f"task {task_name!r} has a built-in prompt (its parser reads that format); "
                            "--exemplars is for custom tasks")
        return BUILTIN[task_name]
    if not exemplars_file and task_exemplars:
        return generic_template(list(task_exemplars))
    if not exemplars_file:
        raise DataError(f"task {task_name!r} has no built-in prompt: pass --exemplars FILE.yaml|.jsonl with "
                        "6-10 items of input, rationale and label (answers are written as "
                        "'<rationale> So the answer is <label>.')")
    return generic_template(load_exemplars(exemplars_file))


def render_text(messages: Messages) -> str:
    """The exact prompt, readable: each message under a role header (what --show-prompt prints)."""
    return "\n\n".join(f"### {m['role']}\n{m['content']}" for m in messages)


def request_sha(teacher: str, messages: Messages, sampling: dict) -> str:
    """The cache key of one request: teacher, exact messages and sampling settings (16 hex digits)."""
    blob = json.dumps({"teacher": teacher, "messages": messages, "sampling": sampling},
                      sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]
