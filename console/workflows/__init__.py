"""State machines and multi-database writes. Plain functions: they take the acting
staff user and arguments, never a request, and each is tested without HTTP."""
