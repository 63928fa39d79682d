"""A desk's side of the central server: the outbox uploader, the rules poller, the alert
sender and the repeat-caller cache."""
