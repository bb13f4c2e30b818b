"""Who must not be mailed, and what feeds that list: bounces, complaints, ESP events, imports."""
