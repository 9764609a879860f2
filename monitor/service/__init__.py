"""The treatment console: a FastAPI service in its own process (``python -m monitor.service``).

It reaches the session only through the bridge's control channel (``monitor.control.client``)
and reads the session store read-only; it never imports the bridge, the session or the
interlock loop (import contract ``service-off-the-safety-threads``). A slow, crashed or
flooded service cannot delay a halt: the bridge halts when it loses the console.

Modules: ``app`` (the application and its routes' wiring), ``roles`` (who may do what),
``users`` (the users store: Argon2id hashes in SQLite), ``auth`` (sign-in, sessions that
expire, slowed failed sign-ins), ``port`` (what the service needs from the channel),
``api_*`` (the REST routes), ``live`` (the WebSocket), ``aftercare`` (the printable sheet),
``errors`` (every refusal a 4xx with one sentence), ``static/`` (the pages).
"""
