"""Clinic admin pages: the clinic's accounts (`users`) and their API tokens (`tokens`)."""
