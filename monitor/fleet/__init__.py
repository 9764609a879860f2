"""The fleet store: a clinic chain's records from many bridges in one PostgreSQL database.

``schema`` (migrations, yoyo), ``store`` (``FleetStore``: checked on arrival), ``shipper``
(a bridge's local log into the store, its own process). Nothing here runs in a bridge.
"""
