"""reminder-pipeline: scheduled reminders that keep peer mentors in touch with their assignments."""
