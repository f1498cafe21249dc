from django.db import models

from apps.accounts.models import Team


class Queue(models.Model):
    class AssignmentMode(models.TextChoices):
        MANUAL = "manual", "Manual"
        ROUND_ROBIN = "round_robin", "Round robin"
        LEAST_LOADED = "least_loaded", "Least loaded"

    name = models.CharField(max_length=100, unique=True)
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="queues")
    assignment_mode = models.CharField(max_length=16, choices=AssignmentMode.choices, default=AssignmentMode.MANUAL)
    is_default = models.BooleanField(default=False, help_text="Where conversations go when no rule picks a queue")

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name
