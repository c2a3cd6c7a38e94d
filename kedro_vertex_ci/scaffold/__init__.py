"""Files ``init`` writes into a user's project."""
