"""Sources and their side information."""
