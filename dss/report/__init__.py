"""The report page (`dss report`): one self-contained HTML file for a `dss train` run, a `dss bench` sweep or a
`dss active` study: its curves, tables, a sample of test examples with the teacher's and the student's answers,
and provenance. May import dss.core, dss.tasks, dss.student, dss.bench and dss.active (their readers and
figures); never dss.commands."""
