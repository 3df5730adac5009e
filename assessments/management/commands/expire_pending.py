"""`manage.py expire_pending`: drop feedback whose trace never arrived, one line per item.

Run it from cron (every few minutes is plenty); feedback that waits longer than
FEEDBACKHUB_PENDING_FEEDBACK_SECONDS is dropped. Holding new pending feedback also
expires overdue items, so a busy server cleans up on its own.
"""

from django.core.management.base import BaseCommand

from assessments import services


class Command(BaseCommand):
    help = "Expire pending feedback whose trace (or span) did not arrive in time; logs each expired item."

    def handle(self, *args, **options):
        expired = services.expire_held()
        for pending in expired:
            self.stdout.write(
                f"expired {pending.kind} {pending.assessment_id} for trace {pending.trace_id} "
                f"(name {pending.payload.get('name')!r}, held since {pending.created_at.isoformat()})"
            )
        self.stderr.write(f"{len(expired)} pending item(s) expired.")
