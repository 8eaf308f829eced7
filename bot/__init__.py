"""The loyalty bot core: configuration, storage, domain rules and the application wiring."""
