"""Clinic admin pages: the clinic's accounts (`users`), their API tokens (`tokens`) and the
clinic's settings (`clinic`)."""
