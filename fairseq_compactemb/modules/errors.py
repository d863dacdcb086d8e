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


class CompactCheckpointError(ValueError):
    """A checkpoint that cannot be this model's: a missing or tampered tensor (e.g. the slim
    assignment buffer) or one trained with another dictionary.

    Raised while loading (the modules' ``_load_from_state_dict``), before anything is copied.
    The message names the tensor, what is wrong and what to do, e.g.
    ``decoder.embed_tokens.weight: the checkpoint has a 4,992-word vocabulary but the dictionary
    has 5,107 words; load it with the data directory (dict.txt) it was trained with``.
    Importing :mod:`fairseq_compactemb` makes the fairseq CLIs print it on one line (no
    traceback) and exit with status 1.
    """

    def __init__(self, what: str, problem: str, fix: str):
        self.what, self.problem, self.fix = what, problem, fix
        super().__init__(f"{what}: {problem}; {fix}")
