"""A backend module that fails while being imported (tests/test_hostile_input.py)."""

raise RuntimeError("refusing to be imported")
