"""The read side of each screen: what a list or page shows, loaded and decorated."""
