"""Adapters doing I/O behind small interfaces: webhook and email senders, Kafka helpers,
files, and the one module that touches private Faust and aiokafka members (compat).
"""
