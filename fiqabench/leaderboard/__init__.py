"""Submission bundles, their validation by re-scoring, and the static leaderboard site."""
