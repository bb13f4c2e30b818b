"""What a marketer manages through the API and the dashboard: accounts, keys, lists, imports."""
