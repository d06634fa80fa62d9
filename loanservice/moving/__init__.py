"""Moving in: importing a hub's schools, families, pupils, other borrowers and running loans from CSV."""
