"""A custom operator written for Airflow 2."""

from airflow.models import BaseOperator
from airflow.utils.decorators import apply_defaults


class LegacyExportOperator(BaseOperator):
    template_fields = ("target",)

    @apply_defaults
    def __init__(self, target, **kwargs):
        super().__init__(**kwargs)
        self.target = target

    def execute(self, context):
        self.log.info("exporting %s for %s", self.target, context["execution_date"])
