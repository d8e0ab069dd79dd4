"""Persistence: the tables, the database, the order log and its fold, the SKU mapping."""
