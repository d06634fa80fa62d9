"""Classroom sets: named groups of instruments lent to a school and checked in item by item."""
