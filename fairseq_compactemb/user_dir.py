"""Print the directory to pass to fairseq's ``--user-dir``.

Works for an editable checkout and for a plain ``pip install .``::

    fairseq-train --user-dir "$(fairseq-compactemb-user-dir)" ...
    fairseq-train --user-dir "$(python -m fairseq_compactemb.user_dir)" ...
"""
import os


def user_dir() -> str:
    """Absolute path of the installed ``fairseq_compactemb`` package."""
    return os.path.dirname(os.path.abspath(__file__))


def main() -> None:
    print(user_dir())


if __name__ == "__main__":
    main()
