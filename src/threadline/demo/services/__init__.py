"""The demo shop: gateway, catalog, orders, payments and the fulfillment worker.

Each module is a real service run as its own process with
``python -m threadline.demo.services.<name> --port N``.
"""
