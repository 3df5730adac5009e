"""`manage.py createapikey --experiment NAME [--label TEXT] [--create]`: print a new API key once."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from traces import services
from traces.access import Actor
from traces.models import Experiment


class Command(BaseCommand):
    help = (
        "Create an API key scoped to one or more experiments and print it once. The key goes to "
        "stdout alone (for scripts); everything else goes to stderr."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--experiment",
            action="append",
            required=True,
            metavar="NAME",
            help="Experiment the key may read and write (repeat for several).",
        )
        parser.add_argument("--label", default="", help="What the key is for, shown in admin and histories.")
        parser.add_argument("--create", action="store_true", help="Create experiments that do not exist yet.")

    def handle(self, *args, experiment, label, create, **options):
        actor = Actor.for_system("createapikey")
        experiments = []
        for name in dict.fromkeys(experiment):
            found = Experiment.objects.filter(name=name).first()
            if found is None:
                if not create:
                    raise CommandError(f"Experiment {name!r} does not exist (pass --create to create it).")
                try:
                    found = services.create_experiment(name=name, actor=actor)
                except ValidationError as exc:
                    raise CommandError(f"Cannot create experiment {name!r}: {'; '.join(exc.messages)}") from None
                self.stderr.write(f"Created experiment {found.name!r} (id {found.pk}).")
            experiments.append(found)
        try:
            api_key, raw = services.create_api_key(experiments=experiments, label=label, actor=actor)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        names = ", ".join(e.name for e in experiments)
        self.stderr.write(f"API key {api_key.prefix}… for {names}. It is shown only now; store it safely:")
        self.stdout.write(raw)
