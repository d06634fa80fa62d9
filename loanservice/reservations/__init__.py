"""Reservations: the public catalogue, parents reserving a type and size, waiting lists and the staff queue."""
