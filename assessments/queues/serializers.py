"""Shapes of review queues on the native API (input shape only; the services check the rest)."""

from rest_framework import serializers

from traces.serializers import JSONValueField, iso_datetime

from .models import Queue


class QueueInput(serializers.Serializer):
    """A new queue (POST) or the changes (PATCH, every field optional)."""

    name = serializers.CharField(max_length=200)
    instructions = serializers.CharField(allow_blank=True, required=False, max_length=20_000)
    questions = serializers.ListField(
        child=serializers.CharField(max_length=250), help_text="definition names, in order"
    )
    reviewers = serializers.ListField(
        child=serializers.CharField(max_length=150), required=False, help_text="usernames; empty: every reviewer"
    )
    answers_per_item = serializers.IntegerField(required=False, min_value=1, max_value=10)
    blind = serializers.BooleanField(required=False)
    lease_seconds = serializers.IntegerField(required=False, min_value=1, max_value=7 * 24 * 3600)
    rule = serializers.DictField(
        required=False,
        allow_null=True,
        help_text='{"filter": "<trace filter>", "sample_rate": 0.25}: adds matching traces as they come; null removes it',
    )
    archived = serializers.BooleanField(required=False)

    def __init__(self, *args, partial_update: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if partial_update:
            for name in ("name", "questions"):
                self.fields[name].required = False

    def validate(self, attrs):
        data = self.initial_data if isinstance(self.initial_data, dict) else {}
        unknown = set(data) - set(self.fields) - {"queue_id", "experiment_id", "created_at", "updated_at"}
        if unknown:
            raise serializers.ValidationError({sorted(unknown)[0]: ["is not a queue field"]})
        rule = attrs.pop("rule", serializers.empty) if "rule" in data else serializers.empty
        if rule is None:
            attrs.update(rule_filter="", rule_sample_rate=1.0)
        elif rule is not serializers.empty:
            extra = set(rule) - {"filter", "sample_rate"}
            if extra:
                raise serializers.ValidationError({"rule": [f"{sorted(extra)[0]} is not a rule field"]})
            if not isinstance(rule.get("filter"), str):
                raise serializers.ValidationError({"rule": ["filter: a filter in the trace list's language"]})
            attrs["rule_filter"] = rule["filter"]
            if "sample_rate" in rule:
                rate = rule["sample_rate"]
                if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
                    raise serializers.ValidationError({"rule": ["sample_rate: a number from 0 to 1"]})
                attrs["rule_sample_rate"] = float(rate)
        return attrs


class QueueOut(serializers.ModelSerializer):
    queue_id = serializers.CharField(source="pk", read_only=True)
    experiment_id = serializers.CharField(read_only=True)
    reviewers = serializers.SerializerMethodField()
    rule = serializers.SerializerMethodField()
    archived = serializers.BooleanField(source="is_archived", read_only=True)

    class Meta:
        model = Queue
        fields = [
            "queue_id",
            "experiment_id",
            "name",
            "instructions",
            "questions",
            "reviewers",
            "answers_per_item",
            "blind",
            "lease_seconds",
            "rule",
            "archived",
            "created_at",
            "updated_at",
        ]

    def get_reviewers(self, queue) -> list[str]:
        return sorted(user.username for user in queue.reviewers.all())

    def get_rule(self, queue) -> dict | None:
        if not queue.rule_filter:
            return None
        return {"filter": queue.rule_filter, "sample_rate": queue.rule_sample_rate}


class ItemsAddInput(serializers.Serializer):
    trace_ids = serializers.ListField(child=serializers.CharField(max_length=64), required=False)
    filter = serializers.CharField(required=False, allow_blank=True, max_length=10_000)
    limit = serializers.IntegerField(required=False)
    restore = serializers.BooleanField(required=False, default=False, help_text="re-add removed items")


class ItemsAddedOut(serializers.Serializer):
    added = serializers.IntegerField()
    already_queued = serializers.IntegerField()
    previously_removed = serializers.IntegerField()


class WorkOut(serializers.Serializer):
    """A reviewer's work on one item (the `item` of `next`, an answer, a decline)."""

    trace_id = serializers.CharField(source="item.trace_id")
    state = serializers.CharField()
    lease_expires_at = serializers.DateTimeField(source="expires_at", allow_null=True)
    answer_count = serializers.IntegerField(source="item.answer_count")
    complete = serializers.BooleanField(source="item.complete")
    assessment_ids = serializers.DictField(child=serializers.CharField())
    reason = serializers.CharField()

    def to_representation(self, work) -> dict:
        """The dict DRF's field walk gives (tests/queues/test_queue_api.py checks they agree),
        built directly: DRF copies a serializer's fields for every instance, a tenth of `next`."""
        return {
            "trace_id": str(work.item.trace_id),
            "state": str(work.state),
            "lease_expires_at": iso_datetime(work.expires_at),
            "answer_count": int(work.item.answer_count),
            "complete": bool(work.item.complete),
            "assessment_ids": {str(name): str(pk) for name, pk in work.assessment_ids.items()},
            "reason": str(work.reason),
        }


class NextOut(serializers.Serializer):
    item = WorkOut()

    def to_representation(self, instance) -> dict:
        return {"item": WorkOut().to_representation(instance["item"])}


class AnswerInput(serializers.Serializer):
    answers = serializers.DictField(child=JSONValueField(allow_null=True), help_text="definition name → value")
    rationale = serializers.DictField(child=serializers.CharField(allow_blank=True), required=False)


class DeclineInput(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")


class ReviewerProgressOut(serializers.Serializer):
    answered = serializers.IntegerField()
    declined = serializers.IntegerField()
    leased = serializers.IntegerField()


class ProgressOut(serializers.Serializer):
    total = serializers.IntegerField()
    complete = serializers.IntegerField()
    declined = serializers.IntegerField()
    reviewers = serializers.DictField(child=ReviewerProgressOut())
