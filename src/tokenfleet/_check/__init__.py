"""``tokenfleet.check``: diagnose a client configuration, as ``tokenfleet check`` prints it."""
