"""What runs the stages: the schedule, the day lock, the one "finish day D" path, the service."""
