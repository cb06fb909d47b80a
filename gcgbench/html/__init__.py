"""HTML pages from jinja2 templates (autoescaped), shared by the leaderboard pages and the run viewers."""
