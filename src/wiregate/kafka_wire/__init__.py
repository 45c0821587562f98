"""Kafka wire protocol front end: a sans-IO state machine over the core."""

from .connection import KafkaConnection

__all__ = ["KafkaConnection"]
