"""The user's side: the `capsim` command line, console tables, progress, the commands that print and write."""
