"""Accounts: sign-in, roles and the admin pages that manage users (blueprints in views)."""
