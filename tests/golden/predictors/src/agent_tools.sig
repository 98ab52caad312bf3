"""A tool that another file's agent imports."""

tool lookup(key: str (min_length=1) "The key to look up") -> str "Look a key up in the store"
