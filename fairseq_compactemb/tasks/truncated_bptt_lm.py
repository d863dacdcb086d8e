"""``compact_truncated_bptt_lm``: language modelling over contiguous streams, segment after segment.

fairseq's ``language_modeling`` task cuts the corpus into blocks and shuffles them, so two
consecutive batches hold unrelated text: a model that carries a memory from one batch to the
next (Transformer-XL) would attend to the wrong context. This task instead

* concatenates the split into one token stream (lines end with ``</s>`` as binarised; one
  ``</s>`` is prepended as the context of the very first word),
* cuts it into ``G = batch size x data-parallel workers`` contiguous streams of (almost) equal
  length, each worker taking its ``batch size`` streams, and
* yields segment ``k`` of every stream as batch ``k``, in order, with no shuffling, for
  training, validation and ``fairseq-eval-lm`` alike: row ``b`` of batch ``k + 1`` continues
  row ``b`` of batch ``k``.

Every token of the split is a target exactly once (the last input of a segment is the first
target's context in the next one, so no token is lost at segment borders); the last segment
may be shorter and rows whose stream has ended are padded at the end (pad targets are ignored).

Batch size: ``--batch-size`` (``--batch-size-valid`` for validation), else
``--max-tokens // --tokens-per-sample``. ``fairseq-eval-lm`` evaluates a single stream
(batch size 1, the paper's setting) unless ``--batch-size`` is given.

Memory bookkeeping: models that set ``uses_stream_memory = True`` (``compact_transformer_xl``)
receive ``net_input["stream_position"] = (split, k)``; the model keeps one memory per split and
starts afresh whenever ``k == 0`` (a new pass: new epoch, new validation, new evaluation) or
``k`` does not follow the previous call's segment (e.g. after resuming mid-epoch). Other models
can be trained with this task too; they simply do not get the key.
"""
import functools
import logging
import math
import os
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import torch
from fairseq import utils
from fairseq.data import Dictionary, FairseqDataset, data_utils, iterators
from fairseq.dataclass import FairseqDataclass
from fairseq.tasks import FairseqTask, register_task

from ..modules.errors import CompactConfigError

logger = logging.getLogger(__name__)


@dataclass
class CompactTruncatedBPTTLMConfig(FairseqDataclass):
    data: str = field(default="???", metadata={"help": "path to the data-bin directory (colon-separated "
                                                        "shards: one per epoch)"})
    tokens_per_sample: int = field(
        default=150, metadata={"help": "segment length T (Transformer-XL's tgt_len)"})


class TokenStream(FairseqDataset):
    """A whole split as one 1-D token tensor ``[N + 1]``: ``</s>`` then the N corpus tokens.

    ``len()`` is N, the number of tokens that will be predicted.
    """

    def __init__(self, tokens: torch.Tensor, split: str):
        self.tokens, self.split = tokens, split

    def __len__(self) -> int:
        return self.tokens.numel() - 1

    def __getitem__(self, index):
        raise TypeError("a TokenStream is read through StreamSegments, not item by item")


class StreamSegments(torch.utils.data.Dataset):
    """Batch ``k`` = segment ``k`` of this worker's ``batch_size`` streams.

    Item ``k`` is ``(k, inputs, targets)``, both ``[batch_size, T_k]`` long tensors, where
    ``targets[b, t]`` is the token after ``inputs[b, t]`` in the stream (``T_k = T`` except for
    the last segment). Stream ``g`` of the ``G`` global streams predicts the tokens
    ``[start_g, start_g + length_g)`` of the corpus; lengths differ by at most one token.

    Args:
        stream: the split.  batch_size: streams per worker.  tokens_per_sample: T.
        pad: padding id for rows whose stream has ended.
        num_shards, shard_id: data-parallel workers and this worker's rank.
    """

    def __init__(self, stream: TokenStream, batch_size: int, tokens_per_sample: int, pad: int,
                 num_shards: int = 1, shard_id: int = 0):
        super().__init__()
        self.stream, self.tokens, self.pad = stream, stream.tokens, pad
        self.batch_size, self.tokens_per_sample = batch_size, tokens_per_sample
        total = len(stream)
        num_streams = batch_size * num_shards
        if total < num_streams:
            raise CompactConfigError(
                "--batch-size", f"{num_streams} streams ({batch_size} per worker x {num_shards} "
                f"workers) but the {stream.split} split has only {total} tokens",
                "use a smaller --batch-size (or --max-tokens)")
        base, extra = divmod(total, num_streams)
        lengths = [base + (g < extra) for g in range(num_streams)]
        starts = [sum(lengths[:g]) for g in range(num_streams)]
        mine = slice(shard_id * batch_size, (shard_id + 1) * batch_size)
        self.starts, self.lengths = starts[mine], lengths[mine]
        self.num_segments = math.ceil(max(lengths) / tokens_per_sample)

    def __len__(self) -> int:
        return self.num_segments

    def __getitem__(self, k: int) -> Tuple[int, torch.Tensor, torch.Tensor]:
        lo = k * self.tokens_per_sample
        width = min(self.tokens_per_sample, max(self.lengths) - lo)
        inputs = torch.full((self.batch_size, width), self.pad, dtype=torch.long)
        targets = torch.full((self.batch_size, width), self.pad, dtype=torch.long)
        for b, (start, length) in enumerate(zip(self.starts, self.lengths)):
            n = max(0, min(width, length - lo))
            # tokens[start + t] is the context of corpus token start + t (= tokens[start + t + 1])
            inputs[b, :n] = self.tokens[start + lo: start + lo + n]
            targets[b, :n] = self.tokens[start + lo + 1: start + lo + n + 1]
        return k, inputs, targets


@register_task("compact_truncated_bptt_lm", dataclass=CompactTruncatedBPTTLMConfig)
class CompactTruncatedBPTTLMTask(FairseqTask):
    """See the module docstring."""

    def __init__(self, cfg: CompactTruncatedBPTTLMConfig, dictionary: Dictionary):
        super().__init__(cfg)
        self.dictionary = dictionary
        # set by build_model: do the models take net_input["stream_position"]?
        self.models_use_stream_memory: Optional[bool] = None

    @classmethod
    def setup_task(cls, cfg: CompactTruncatedBPTTLMConfig, **kwargs):
        paths = utils.split_paths(cfg.data)
        if not paths:
            raise CompactConfigError("data", "no data directory given", "pass the data-bin directory")
        dictionary = Dictionary.load(os.path.join(paths[0], "dict.txt"))
        logger.info(f"dictionary: {len(dictionary)} types")
        return cls(cfg, dictionary)

    def build_model(self, cfg, from_checkpoint=False):
        model = super().build_model(cfg, from_checkpoint)
        uses = bool(getattr(model, "uses_stream_memory", False))
        self.models_use_stream_memory = uses if self.models_use_stream_memory is None \
            else (self.models_use_stream_memory and uses)
        if not uses:
            logger.info(f"{type(model).__name__} keeps no memory across segments; the segments are "
                        "still read in order")
        return model

    def load_dataset(self, split: str, epoch: int = 1, combine: bool = False, **kwargs):
        paths = utils.split_paths(self.cfg.data)
        path = os.path.join(paths[(epoch - 1) % len(paths)], split)
        lines = data_utils.load_indexed_dataset(path, self.dictionary, combine=combine)
        if lines is None:
            raise FileNotFoundError(f"Dataset not found: {split} ({path})")
        dtype = torch.int32 if len(self.dictionary) < 2 ** 31 else torch.long  # halves RAM on big corpora
        tokens = torch.cat([torch.tensor([self.dictionary.eos()], dtype=dtype)]
                           + [lines[i].to(dtype) for i in range(len(lines))])
        self.datasets[split] = TokenStream(tokens, split)
        logger.info(f"{split}: {len(self.datasets[split]):,} tokens in {len(lines):,} lines, read as "
                    f"contiguous streams of --tokens-per-sample {self.cfg.tokens_per_sample} segments")

    def _segments(self, dataset: TokenStream, batch_size: int, num_shards: int, shard_id: int):
        return StreamSegments(dataset, batch_size, self.cfg.tokens_per_sample, self.dictionary.pad(),
                              num_shards=num_shards, shard_id=shard_id)

    def _iterator(self, segments: StreamSegments, num_workers=0, epoch=1, data_buffer_size=0,
                  skip_remainder_batch=False) -> iterators.EpochBatchIterator:
        return iterators.EpochBatchIterator(
            dataset=segments, collate_fn=functools.partial(self._collate, segments),
            # one item is already a whole batch; the order is the order of the text
            batch_sampler=[[k] for k in range(len(segments))], disable_shuffling=True,
            num_workers=num_workers, epoch=epoch, buffer_size=data_buffer_size,
            skip_remainder_batch=skip_remainder_batch)

    def _collate(self, segments: StreamSegments, items: List[Tuple[int, torch.Tensor, torch.Tensor]]):
        (k, inputs, targets), = items
        pad = self.dictionary.pad()
        net_input = {"src_tokens": inputs, "src_lengths": inputs.ne(pad).sum(1)}
        if self.models_use_stream_memory:
            net_input["stream_position"] = (segments.stream.split, k)
        return {"id": torch.full((inputs.size(0),), k, dtype=torch.long), "net_input": net_input,
                "target": targets, "nsentences": inputs.size(0), "ntokens": int(targets.ne(pad).sum())}

    def get_batch_iterator(self, dataset, max_tokens=None, max_sentences=None, num_shards=1, shard_id=0,
                           num_workers=0, epoch=1, data_buffer_size=0, skip_remainder_batch=False,
                           **unused):
        """Batches of ``--batch-size`` streams (else ``--max-tokens // --tokens-per-sample``), in
        text order; fairseq's length filtering / shuffling options do not apply."""
        if not isinstance(dataset, TokenStream):
            raise TypeError(f"{type(self).__name__} batches TokenStreams from its own load_dataset, "
                            f"got {type(dataset).__name__}")
        batch_size = max_sentences
        if not batch_size:
            if not max_tokens:
                raise CompactConfigError("--batch-size", "is not set and neither is --max-tokens",
                                         "pass --batch-size (streams per worker)")
            batch_size = max_tokens // self.cfg.tokens_per_sample
            if batch_size < 1:
                raise CompactConfigError(
                    "--max-tokens", f"{max_tokens} is smaller than one segment "
                    f"(--tokens-per-sample {self.cfg.tokens_per_sample})",
                    "raise --max-tokens or pass --batch-size")
        segments = self._segments(dataset, batch_size, num_shards, shard_id)
        logger.info(f"{dataset.split}: {batch_size} streams x {len(segments)} segments of "
                    f"{self.cfg.tokens_per_sample} tokens (worker {shard_id + 1}/{num_shards})")
        return self._iterator(segments, num_workers, epoch, data_buffer_size, skip_remainder_batch)

    def eval_lm_dataloader(self, dataset, max_tokens: Optional[int] = 36000, batch_size: Optional[int] = None,
                           max_positions: Optional[int] = None, num_shards: int = 1, shard_id: int = 0,
                           num_workers: int = 1, data_buffer_size: int = 10, context_window: int = 0):
        """``fairseq-eval-lm``: segment after segment of ``--batch-size`` streams (default 1, the
        whole split as one text) with the model's memory carried over; ``--max-tokens`` is not
        used to size the batch (it would cut the text into many short streams)."""
        if context_window > 0:
            raise CompactConfigError(
                "--context-window", "does not apply to compact_truncated_bptt_lm, which carries "
                "the model's memory across segments instead",
                "drop --context-window; give more context with --model-overrides \"{'mem_len': N}\"")
        segments = self._segments(dataset, batch_size or 1, num_shards, shard_id)
        logger.info(f"eval-lm {dataset.split}: {segments.batch_size} stream(s) x {len(segments)} segments "
                    f"of {self.cfg.tokens_per_sample} tokens")
        return self._iterator(segments, num_workers, 1, data_buffer_size).next_epoch_itr(shuffle=False)

    @property
    def source_dictionary(self):
        return self.dictionary

    @property
    def target_dictionary(self):
        return self.dictionary
