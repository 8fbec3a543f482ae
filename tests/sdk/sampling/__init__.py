"""Head sampling in the SDK, and the rule model it shares with the server."""
