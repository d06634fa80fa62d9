"""The append-only audit trail: who changed what, and when."""
