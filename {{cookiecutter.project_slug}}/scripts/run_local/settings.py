"""What this project was generated with that `make run` depends on: the package's only generated module."""

# With the example DAGs, make run also serves the stand-in HTTP APIs they call and creates their
# `warehouse` database (scripts/stand_ins.py).
EXAMPLE_STAND_INS = {{ 'True' if cookiecutter.include_examples else 'False' }}
