"""Using reward models: scoring files, best-of-N selection (and, later, the HTTP server)."""
