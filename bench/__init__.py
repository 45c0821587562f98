"""wiregate's benchmarks: ``python -m bench`` runs every probe side by side with the peer brokers.

See bench/README.md.
"""
