"""Forward to a friend: counted per campaign, never stored."""
