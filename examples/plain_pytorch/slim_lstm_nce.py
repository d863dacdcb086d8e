"""A plain-PyTorch LSTM language model with a slim input, a slim output and NCE (no fairseq).

    python examples/plain_pytorch/slim_lstm_nce.py [--steps 50]

Runs on random Zipfian tokens: the point is the API, see the README section "Plain PyTorch".
"""
import argparse
import math

import torch
from torch import nn

from fairseq_compactemb.modules import NoiseSampler, SlimEmbedding, SlimOutput, nce_loss


class SlimLSTMLM(nn.Module):
    def __init__(self, vocab: int, dim: int = 64, subvectors: int = 8):
        super().__init__()
        # 1/8 of a V x dim table each: M = V * K / 8 sub-vectors of size dim / K
        self.embed = SlimEmbedding(vocab, dim, subvectors=subvectors, pool_size=vocab * subvectors // 8)
        self.lstm = nn.LSTM(dim, dim, batch_first=True)
        self.out = SlimOutput(vocab, dim, subvectors=subvectors, pool_size=vocab * subvectors // 8 // subvectors * subvectors)

    def forward(self, tokens):  # [B, T] -> hidden states [B, T, dim]
        return self.lstm(self.embed(tokens))[0]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--steps", type=int, default=50)
    args = p.parse_args(argv)
    torch.manual_seed(0)
    V = 2000
    counts = 1.0 / torch.arange(1, V + 1, dtype=torch.float64)  # Zipfian word counts
    data = torch.multinomial(counts / counts.sum(), 20 * 33 * args.steps, replacement=True).view(-1, 20, 33)
    model = SlimLSTMLM(V)
    sampler = NoiseSampler(V, "unigram", counts=counts, alpha=0.75, seed=1)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step, batch in enumerate(data):
        hidden = model(batch[:, :-1]).reshape(-1, 64)  # [N, H]
        target = batch[:, 1:].reshape(-1)  # [N]
        noise = sampler.sample(100)  # 100 noise words shared by the batch
        target_scores, noise_scores = model.out.score_sample(hidden, target, noise.ids)
        # log Z = log V: a fresh model (scores near 0) starts normalised (the nce criterion's default)
        loss = nce_loss(target_scores, noise_scores, sampler.log_expected_count(target, noise.num_tries),
                        sampler.log_expected_count(noise.ids, noise.num_tries), log_z=math.log(V)).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 10 == 0 or step == args.steps - 1:
            with torch.no_grad():  # exact perplexity: the normalised target log-probabilities
                ppl = model.out(hidden, target).neg().mean().exp().item()
            print(f"step {step:3d}  nce loss {loss.item():.3f}  perplexity {ppl:.1f}")
    return ppl


if __name__ == "__main__":
    main()
