"""`manage.py verify_audit --client <slug>`: walk a client's audit hash chain; exit 1 at the first break."""

from django.core.management.base import BaseCommand, CommandError

from apps.audit.services import audit_verify_client
from apps.core.exceptions import ApplicationError
from apps.tenancy.models import Client


class Command(BaseCommand):
    help = "Verify a client's audit trail: prints 'intact: N events', or the first broken link and exits 1."

    def add_arguments(self, parser):
        parser.add_argument("--client", required=True, help="The client's slug.")

    def handle(self, *args, **options):
        client = Client.objects.filter(slug=options["client"]).first()
        if client is None:
            raise CommandError(f"No client with the slug {options['client']!r}.")
        try:
            result = audit_verify_client(client=client)
        except ApplicationError as error:
            raise CommandError(error.message) from None
        if result.ok:
            self.stdout.write(f"intact: {result.checked} events")
            return
        self.stdout.write(
            f"broken at event #{result.first_broken_seq}: {result.reason} "
            f"({result.checked} events before it are intact)"
        )
        raise SystemExit(1)
