"""One exception type for every user-facing configuration mistake."""


class CompactConfigError(ValueError):
    """A bad flag or an inconsistent combination of flags.

    The message always names the flag and the fix, e.g.
    ``--slim-subvectors 7 does not divide the embedding dimension 300; choose a divisor of 300``.
    Importing :mod:`fairseq_compactemb` makes the fairseq CLIs print this message on one line
    (no traceback) and exit with status 2.
    """

    def __init__(self, flag: str, problem: str, fix: str):
        self.flag, self.problem, self.fix = flag, problem, fix
        super().__init__(f"{flag}: {problem}; {fix}")
