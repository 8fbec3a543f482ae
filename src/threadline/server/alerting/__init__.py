"""SLOs and alerts: definitions, burn-rate evaluation from rollups, and delivery."""
