"""Database: models, engines and sessions with Row Level Security, migrations."""
