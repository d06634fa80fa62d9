"""Bookings: schools book classroom sets for coming terms; the store delivers and collects them."""
