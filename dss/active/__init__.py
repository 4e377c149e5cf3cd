"""Active, budget-capped distillation (`dss active`, `dss plan`): chains of rounds that train a student on the
teacher's answers so far and choose which pool examples the teacher answers next, within a budget; the report of
accuracy against teacher spend, and the learning-curve fit that plans a budget. May import dss.core, dss.tasks,
dss.teacher, dss.student and dss.bench (its workers, report helpers and figures); never dss.commands."""
