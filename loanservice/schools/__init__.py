"""Schools: the borrowers of classroom sets, and the employers of school users."""
