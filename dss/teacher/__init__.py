"""The extraction stage: teacher clients (the one network seam), prompts, the resumable extractor, its record
files, batch jobs and costs. May import dss.core and dss.tasks; never dss.student, dss.bench or dss.commands."""
