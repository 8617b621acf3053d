"""The systems compared by `python -m bench compare`: one driver per system, one protocol."""
