"""The diagnosis pages, one module per sub-domain; diagnosis/urls.py maps them."""
