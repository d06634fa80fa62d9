"""Borrowers: families (the parent or carer who hires), their pupils, and other borrowers."""
