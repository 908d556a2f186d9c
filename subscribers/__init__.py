"""The subscriber store and its rules: signup, confirmation, preferences, suppression."""
