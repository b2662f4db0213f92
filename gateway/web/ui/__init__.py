"""The dashboard at /ui/: sessions opened with a token, pages rendered on the server (every value
escaped), a little JavaScript of our own for what is live (docs/dashboard.md)."""
