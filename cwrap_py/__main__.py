"""``python -m cwrap_py`` is the ``swrap`` command."""

from cwrap_py.cli import main

if __name__ == "__main__":
    main()
