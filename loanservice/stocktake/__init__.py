"""Stocktakes: count a place by scanning what is there, then put the records right."""
