"""``python -m qackage.schema``: regenerate the published schemas."""

from qackage.schema import write_all

for path in write_all():
    print(path)
