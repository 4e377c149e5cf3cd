"""ANLI round 1 (adversarial NLI). Train (16,946 rows) comes from the hub; valid/test are in the release."""
from dss.tasks.base import Parsed
from dss.tasks.nli import _SO_ANSWER, NLITask, parse_nli


class ANLI1(NLITask):
    name = "anli1"
    description = "ANLI round 1: does the premise entail, contradict or not decide the hypothesis?"
    source = "release folder anli1/ (valid, test); hub `anli` train_r1/dev_r1/test_r1"
    hub = {"train": ("anli", None, "train_r1"), "valid": ("anli", None, "dev_r1"), "test": ("anli", None, "test_r1")}

    def parse_completion(self, text, example=None) -> Parsed:
        return parse_nli(text, _SO_ANSWER)
