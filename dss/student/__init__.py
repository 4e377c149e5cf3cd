"""The training stage: the Method table, TrainConfig, the student and its tokenizer, batching, the loss, the
training loop, evaluation, prediction, and the run folder (the one owner of its files). May import dss.core
and dss.tasks; never dss.teacher, dss.bench or dss.commands."""
