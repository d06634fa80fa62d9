"""Loans of single instruments: check-out, check-in, renewal, size exchange, loss."""
