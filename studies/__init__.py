"""One-off studies behind committed results: per study its run script, report code and test."""
