"""Database backends of Buzón's own."""
