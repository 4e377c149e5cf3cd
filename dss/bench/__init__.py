"""The benchmark stage: a sweep's grid of `dss train` cells, running it, its report and figures, and the speed
benchmarks (training, extraction). May import dss.core, dss.tasks, dss.student and dss.teacher; never
dss.commands."""
