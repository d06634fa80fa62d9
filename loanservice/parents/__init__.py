"""Parents and carers: self-registration, email confirmation, password reset, their children and home page."""
