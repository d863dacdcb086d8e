"""The logging output every token-level criterion of the plugin returns."""


def token_logging_output(loss_sum, sample, sentence_avg: bool):
    """``(sample_size, logging_output)`` for a loss summed over the target tokens of ``sample``:
    fairseq normalises the gradient by ``sample_size`` (sentences with ``--sentence-avg``)."""
    ntokens, nsentences = sample["ntokens"], sample["target"].size(0)
    sample_size = nsentences if sentence_avg else ntokens
    return sample_size, {"loss": loss_sum, "ntokens": ntokens, "nsentences": nsentences, "sample_size": sample_size}
