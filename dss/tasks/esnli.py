"""e-SNLI: SNLI with human explanations (the release holds 10,000 train rows with PaLM outputs)."""
from dss.tasks.base import Parsed
from dss.tasks.nli import _ANSWER_LINE, NLITask, parse_nli


class ESNLI(NLITask):
    name = "esnli"
    description = "e-SNLI: entailment, neutral or contradiction between two captions"
    source = "release folder esnli/ (train 10k subset, valid, test); hub `esnli`"
    hub = {"train": ("esnli", None, "train"), "valid": ("esnli", None, "validation"), "test": ("esnli", None, "test")}

    def parse_completion(self, text, example=None) -> Parsed:
        return parse_nli(text, _ANSWER_LINE)
