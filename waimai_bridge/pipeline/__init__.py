"""The event pipeline: inbox, store-pinned queues, the actors that fold orders, the sweeper."""
