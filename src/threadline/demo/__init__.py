"""`threadline demo`: a shop of real services, simulated users, and a summary of what was seen."""
