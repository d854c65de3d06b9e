"""A faster CPU path for a one-layer bidirectional ``nn.GRU`` over padded batches.

PyTorch's CPU GRU back-propagates through a graph of small operations at
every time step, and packing the sequences for variable lengths adds more:
in the SynthSpeech encoder the GRU's forward and backward take most of a
training step. :func:`bidirectional_gru` computes the same outputs and
gradients from the same ``nn.GRU`` parameters (so checkpoints and exported
models are unchanged) with

- the input projections of all time steps in one matrix product per
  direction, as cuDNN does;
- both directions advanced together, one batched product per time step;
- a hand-written backward through time (:class:`_GRURecurrence`) that
  keeps only the gates, and computes the weight gradients once at the end;
- the backward direction run forward over each utterance reversed within
  its own length, so no packing is needed and padding never reaches a
  valid frame, as with packed sequences.

Without gradient (validation, a frozen encoder), and off the CPU (cuDNN),
it runs PyTorch's GRU on packed sequences (:func:`packed_gru`), which is
faster there.

``python benchmarks/bigru.py`` times it against ``nn.GRU`` on packed
sequences, side by side.
"""

import torch
from torch import nn
from torch.autograd.function import once_differentiable


def packed_gru(gru, x, frames):
    """Outputs of ``gru`` on ``x`` packed with ``frames`` valid frames per utterance, padded again with zeros."""
    packed = nn.utils.rnn.pack_padded_sequence(x, frames.cpu(), batch_first=True, enforce_sorted=False)
    return nn.utils.rnn.pad_packed_sequence(gru(packed)[0], batch_first=True, total_length=x.shape[1])[0]


def bidirectional_gru(gru, x, frames):
    """Outputs of ``gru`` on ``x`` where utterance ``b`` has ``frames[b]`` valid frames; zeros past them.

    The same as :func:`packed_gru`, which it runs without gradient and off the CPU.

    Arguments
    ---------
    gru : torch.nn.GRU
        One layer, bidirectional, ``batch_first=True``, with biases.
    x : torch.Tensor
        Input of shape (batch, time, gru.input_size).
    frames : torch.Tensor
        Valid frames of each utterance, integers of shape (batch,).

    Returns
    -------
    torch.Tensor
        Shape (batch, time, 2 * gru.hidden_size): the forward direction's outputs, then the backward one's.

    Example
    -------
    >>> _ = torch.manual_seed(0)
    >>> gru = nn.GRU(4, 3, batch_first=True, bidirectional=True)
    >>> x, frames = torch.randn(2, 5, 4), torch.tensor([5, 3])
    >>> torch.allclose(bidirectional_gru(gru, x, frames), packed_gru(gru, x, frames), atol=1e-6)
    True
    """
    if gru.num_layers != 1 or not gru.bidirectional or not gru.batch_first or not gru.bias:
        raise ValueError(f"bidirectional_gru takes a one-layer bidirectional batch-first GRU with biases, not {gru}")
    needs_grad = torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in gru.parameters()))
    if x.device.type != "cpu" or not needs_grad:
        # cuDNN, and PyTorch's own loop when there is no backward pass to save, are the faster ones.
        return packed_gru(gru, x, frames)
    num_frames = x.shape[1]
    steps = torch.arange(num_frames, device=x.device)
    frames = frames.to(x.device)
    valid = steps[None, :] < frames[:, None]
    # Each utterance reversed within its length (an involution: it also undoes itself); padding stays in place.
    reverse = torch.where(valid, frames[:, None] - 1 - steps[None, :], steps[None, :])
    reverse = reverse.unsqueeze(-1)
    x_reversed = x.gather(1, reverse.expand_as(x))
    inputs = torch.stack(
        [
            nn.functional.linear(x, gru.weight_ih_l0, gru.bias_ih_l0),
            nn.functional.linear(x_reversed, gru.weight_ih_l0_reverse, gru.bias_ih_l0_reverse),
        ]
    )
    weight_hh = torch.stack([gru.weight_hh_l0, gru.weight_hh_l0_reverse])
    bias_hh = torch.stack([gru.bias_hh_l0, gru.bias_hh_l0_reverse])
    # (direction, batch, time, 3 * hidden) -> (time, direction, batch, 3 * hidden): one slice per step.
    hidden = _GRURecurrence.apply(inputs.permute(2, 0, 1, 3).contiguous(), weight_hh, bias_hh)
    forward, backward = hidden.permute(1, 2, 0, 3)
    backward = backward.gather(1, reverse.expand_as(backward))
    return torch.cat([forward, backward], dim=-1) * valid.unsqueeze(-1).to(x.dtype)


class _GRURecurrence(torch.autograd.Function):
    """The GRU recurrence over all time steps, given the input projections, with its backward through time.

    With ``a = W_i x + b_i`` (the input projections) and ``g = W_h h + b_h``, in PyTorch's gate order r, z, n:
    ``r = sigmoid(a_r + g_r)``, ``z = sigmoid(a_z + g_z)``, ``n = tanh(a_n + r * g_n)``,
    ``h' = n + z * (h - n)``, from ``h = 0``. The backward pass needs, per step, only ``z`` and the derivatives
    of the three pre-activations of ``g`` with respect to ``h'`` (``coefficients``), all computed at once after
    the forward loop; so each step of the backward loop is four operations.

    Inputs: ``inputs`` (time, directions, batch, 3 * hidden), ``weight_hh`` (directions, 3 * hidden, hidden),
    ``bias_hh`` (directions, 3 * hidden). Output: the hidden states (time, directions, batch, hidden).
    """

    @staticmethod
    def forward(ctx, inputs, weight_hh, bias_hh):
        num_steps, directions, batch, gates = inputs.shape
        size = gates // 3
        weight_t, bias = weight_hh.transpose(1, 2), bias_hh.unsqueeze(1)
        h = inputs.new_zeros(directions, batch, size)
        hidden, reset_update, new, hidden_new = [], [], [], []
        for a in inputs.unbind(0):
            g = torch.baddbmm(bias, h, weight_t)
            rz = torch.sigmoid(a[..., : 2 * size] + g[..., : 2 * size])
            g_n = g[..., 2 * size :]
            n = torch.tanh(torch.addcmul(a[..., 2 * size :], rz[..., :size], g_n))
            h = torch.addcmul(n, rz[..., size:], h - n)
            hidden.append(h)
            reset_update.append(rz)
            new.append(n)
            hidden_new.append(g_n)
        hidden = torch.stack(hidden)
        # Only called when a gradient is needed (see bidirectional_gru): always saves for the backward pass.
        r, z = torch.stack(reset_update).split(size, dim=-1)
        n, g_n = torch.stack(new), torch.stack(hidden_new)
        previous = torch.cat([hidden.new_zeros(1, directions, batch, size), hidden[:-1]])
        grad_a_new = (1 - z) * (1 - n * n)
        # d(pre-activations of g = W_h h + b_h) / dh', gates r, z, n
        coefficients = torch.cat([grad_a_new * g_n * r * (1 - r), (previous - n) * z * (1 - z), grad_a_new * r], dim=-1)
        ctx.save_for_backward(weight_hh, previous, z, grad_a_new, coefficients)
        return hidden

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_hidden):
        weight_hh, previous, z, grad_a_new, coefficients = ctx.saved_tensors
        num_steps, directions, batch, size = previous.shape
        coefficients = coefficients.view(num_steps, directions, batch, 3, size)
        dh = torch.zeros_like(grad_hidden[0])
        grads = [None] * num_steps
        for t in reversed(range(num_steps)):
            dh = dh + grad_hidden[t]
            grads[t] = dh
            grad_g = (dh.unsqueeze(2) * coefficients[t]).view(directions, batch, 3 * size)
            dh = torch.baddbmm(dh * z[t], grad_g, weight_hh)
        dh = torch.stack(grads)
        grad_g = (dh.unsqueeze(3) * coefficients).view(num_steps, directions, batch, 3 * size)
        grad_inputs = torch.cat([grad_g[..., : 2 * size], dh * grad_a_new], dim=-1)
        grad_weight = grad_bias = None
        if ctx.needs_input_grad[1]:
            # sum over time and batch of grad_g^T h_prev, per direction
            grad_weight = torch.bmm(
                grad_g.permute(1, 3, 0, 2).reshape(directions, 3 * size, -1),
                previous.permute(1, 0, 2, 3).reshape(directions, -1, size),
            )
        if ctx.needs_input_grad[2]:
            grad_bias = grad_g.sum(dim=(0, 2))
        return grad_inputs, grad_weight, grad_bias
