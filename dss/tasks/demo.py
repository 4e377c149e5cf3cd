"""PLACEHOLDER — replaced by the demo-task design."""
from dss.tasks import register
from dss.tasks.base import Task


@register
class Demo(Task):
    name = "demo"
