"""The session record: the chain format, its verification, the stores and the log writer.

``chain`` (format) · ``channels`` (channel maps) · ``store`` (the store interface) ·
``chain_log`` (``ChainLog``: the chain's rules on any store) · ``session_info`` ·
``verify`` · ``sqlite_store`` (``SqliteStore``, and ``SessionLog``: the chain over one
SQLite file) · ``memory_store`` · ``writer`` (``LogWriter``) · ``policy`` · ``reconcile`` ·
``open_sessions``. See ``docs/record.md``.
"""
