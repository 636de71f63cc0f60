"""Demo data: builders for coherent records across the ten databases, and the seeder."""
