"""``manage.py bench_guards``: precision/recall of the injection and PII guards on the labelled set."""

from pathlib import Path

from django.core.management.base import BaseCommand

from apps.governance.guards.evaluate import DEFAULT_DATA_DIR, run


class Command(BaseCommand):
    help = "Evaluate the prompt-injection and PII guards on the labelled evaluation set."

    def add_arguments(self, parser):
        parser.add_argument(
            "--data", type=Path, default=DEFAULT_DATA_DIR, help="directory with the jsonl files"
        )
        parser.add_argument("--show-errors", action="store_true", help="list misclassified texts")

    def handle(self, *args, **options):
        run(options["data"], out=self.stdout, show_errors=options["show_errors"])
