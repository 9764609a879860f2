"""The session record: the chain format, its verification, the stores and the log writer."""
