"""Servicing: service plans per instrument type, the servicing queue, sets sent to servicing."""
