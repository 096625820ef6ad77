"""capsim: a discrete-event capacity simulator for LLM serving."""

__version__ = "0.1.0"
