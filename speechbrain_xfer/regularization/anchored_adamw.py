"""AdamW with the decoupled L2-SP pull inside its own pass over the weights."""

import contextlib
import functools
import logging
import math
import os
import shutil

import torch

logger = logging.getLogger(__name__)

# One pass per parameter: read w, g, m, v (and the anchor a), write w, m, v. The arithmetic of ``w.lerp_(a, pull)``
# followed by PyTorch's single-tensor AdamW step, equal to float rounding (a product or two grouped otherwise).
_SOURCE = r"""
#include <ATen/Parallel.h>
#include <cmath>

template <bool pulled>
static void span(float* __restrict__ w, const float* __restrict__ g, float* __restrict__ m,
                 float* __restrict__ v, const float* __restrict__ a, int64_t begin, int64_t end, float pull,
                 float decay, float b1, float beta2, float b2, float step, float bc2, float eps) {
  for (int64_t i = begin; i < end; ++i) {
    float x = w[i];
    if (pulled) x = x + pull * (a[i] - x);
    x *= decay;
    float gi = g[i];
    float mi = m[i] + b1 * (gi - m[i]);
    float vi = beta2 * v[i] + b2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    w[i] = x - step * mi / (std::sqrt(vi) / bc2 + eps);
  }
}

void anchored_adamw_(at::Tensor param, at::Tensor grad, at::Tensor exp_avg, at::Tensor exp_avg_sq,
                     c10::optional<at::Tensor> anchor, double pull, double lr, double beta1, double beta2,
                     double eps, double weight_decay, double bias_correction1, double bias_correction2_sqrt) {
  float* w = param.data_ptr<float>();
  const float* g = grad.data_ptr<float>();
  float* m = exp_avg.data_ptr<float>();
  float* v = exp_avg_sq.data_ptr<float>();
  const float* a = anchor.has_value() ? anchor->data_ptr<float>() : nullptr;
  const float decay = 1.0 - lr * weight_decay, step = lr / bias_correction1;
  at::parallel_for(0, param.numel(), 32768, [=](int64_t begin, int64_t end) {
    if (a != nullptr)
      span<true>(w, g, m, v, a, begin, end, pull, decay, 1.0 - beta1, beta2, 1.0 - beta2, step,
                 bias_correction2_sqrt, eps);
    else
      span<false>(w, g, m, v, a, begin, end, pull, decay, 1.0 - beta1, beta2, 1.0 - beta2, step,
                  bias_correction2_sqrt, eps);
  });
}
"""


@functools.cache
def kernel():
    """The compiled kernel (built once per machine with the C++ compiler and ninja, then cached by torch), or
    ``None`` where it cannot be built: :class:`AnchoredAdamW` then pulls in a separate pass."""
    try:
        quiet = logging.getLogger("torch.utils.cpp_extension")  # its import warns that no CUDA runtime is here
        level = quiet.level
        quiet.setLevel(logging.ERROR)
        try:
            from torch.utils import cpp_extension
        finally:
            quiet.setLevel(level)
        logger.info("loading AnchoredAdamW's kernel (the first time on a machine, it is built: about 30 s)")
        with _ninja_on_path():
            return cpp_extension.load_inline(
                "sbx_anchored_adamw",
                cpp_sources=_SOURCE,
                functions=["anchored_adamw_"],
                extra_cflags=["-O3", "-fno-math-errno", "-fopenmp"],
            )
    except Exception as error:  # no compiler, no ninja, a read-only cache: the separate pass still works
        logger.warning(
            "AnchoredAdamW: its kernel could not be built (%s); the L2-SP pull takes a separate pass. "
            "It needs a C++ compiler and ninja (pip install ninja).",
            str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__,
        )
        return None


@contextlib.contextmanager
def _ninja_on_path():
    """torch runs ``ninja`` from ``PATH``; the ``ninja`` package's copy sits in the environment's ``bin``,
    which is not on ``PATH`` when Python is run as ``.venv/bin/python`` without activating it."""
    path = os.environ.get("PATH", "")
    try:
        import ninja

        if shutil.which("ninja") is None:
            os.environ["PATH"] = ninja.BIN_DIR + os.pathsep + path
    except ImportError:
        pass
    try:
        yield
    finally:
        os.environ["PATH"] = path


def _unhooked(step):
    """``step`` without the hook-running wrappers ``torch.optim.Optimizer`` puts on optimizer classes: the
    wrapper on :class:`AnchoredAdamW` already ran the hooks once."""
    while getattr(step, "hooked", False):
        step = step.__wrapped__
    return step


class AnchoredAdamW(torch.optim.AdamW):
    """:class:`torch.optim.AdamW` that applies the decoupled L2-SP pull in the same pass as its update.

    ``L2SP(decoupled=True)`` pulls every trainable weight towards its anchor before the optimizer's step,
    ``w <- w - lr * alpha * (w - w0)``, then AdamW updates it. As separate operations the pull costs three
    memory passes over the weights besides AdamW's seven (one ``lerp``). Given this optimizer, ``L2SP``
    hands the pull to it (:meth:`defer_pull`) instead, and one compiled loop per weight does both: one pass
    more than AdamW alone (the anchor's read). The result is the same as the ``lerp`` then the update, to
    float rounding (tested to 1e-6); parameters without a pull get AdamW's update alone.

    The kernel is built from C++ on first use (torch's ``load_inline``: a C++ compiler and ninja; about
    30 s, once per machine). Where it cannot be built, or the step is one it does not cover (a tensor
    not float32 or not contiguous, not on the CPU, ``amsgrad``, ``maximize``, ``capturable``,
    ``differentiable``, a gradient scaler's fused step), the pull is a ``lerp`` and the update is
    AdamW's own: the same result, at the separate pass's cost. The state is AdamW's (``step``,
    ``exp_avg``, ``exp_avg_sq``): checkpoints load into either class.

    Arguments are :class:`torch.optim.AdamW`'s.

    Example
    -------
    >>> layer = torch.nn.Linear(2, 1, bias=False)
    >>> optimizer = AnchoredAdamW(layer.parameters(), lr=0.1, weight_decay=0.0)
    >>> with torch.no_grad():
    ...     _ = layer.weight.fill_(5.0)
    >>> layer.weight.grad = torch.zeros_like(layer.weight)  # no gradient: AdamW leaves the weight alone
    >>> optimizer.defer_pull(layer.weight, torch.full((1, 2), 3.0), strength=0.5)
    >>> optimizer.step()  # 5 - 0.1 * 0.5 * (5 - 3)
    >>> layer.weight
    Parameter containing:
    tensor([[4.9000, 4.9000]], requires_grad=True)
    """

    def __init__(self, params, *args, **kwargs):
        super().__init__(params, *args, **kwargs)
        self._pulls = {}  # id(param) -> (anchor, strength) for the next step

    def defer_pull(self, param, anchor, strength):
        """Pulls ``param`` towards ``anchor`` by ``lr * strength`` in the next :meth:`step`, before its update
        (``lr`` of its parameter group at that step)."""
        self._pulls[id(param)] = (anchor, strength)

    @torch.no_grad()
    def step(self, closure=None):
        """One AdamW step, with the pulls deferred since the last one.

        Arguments
        ---------
        closure : callable, optional
            Re-evaluates the model and returns the loss.

        Returns
        -------
        The closure's loss, if there is a closure.
        """
        pulls, self._pulls = self._pulls, {}
        compiled = kernel() if pulls and self._covered(pulls) else None
        if compiled is None:
            for group in self.param_groups:
                for param in group["params"]:
                    if id(param) in pulls and param.grad is not None:
                        anchor, strength = pulls[id(param)]
                        param.lerp_(anchor, group["lr"] * strength)
            return _unhooked(torch.optim.AdamW.step)(self, closure)
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is not None:
                    self._update(compiled, param, group, *pulls.get(id(param), (None, 0.0)))
        return loss

    def _update(self, compiled, param, group, anchor, strength):
        state = self.state[param]
        if not state:  # as AdamW initializes it
            state["step"] = torch.tensor(0.0, dtype=torch.float32)
            state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        state["step"] += 1
        step = state["step"].item()
        beta1, beta2 = group["betas"]
        lr = group["lr"]
        compiled.anchored_adamw_(
            param,
            param.grad,
            state["exp_avg"],
            state["exp_avg_sq"],
            anchor,
            lr * strength,
            lr,
            beta1,
            beta2,
            group["eps"],
            group["weight_decay"],
            1 - beta1**step,
            math.sqrt(1 - beta2**step),
        )

    def _covered(self, pulls):
        """Whether the kernel covers this step (otherwise: the pull apart, then AdamW's own step)."""
        if getattr(self, "grad_scale", None) is not None or getattr(self, "found_inf", None) is not None:
            return False
        for group in self.param_groups:
            options = ("amsgrad", "maximize", "capturable", "differentiable")
            if any(group.get(option) for option in options) or torch.is_tensor(group["lr"]):
                return False
            for param in group["params"]:
                if param.grad is None:
                    continue
                anchor, strength = pulls.get(id(param), (None, 0.0))
                state = self.state[param]
                tensors = [param, param.grad, anchor, state.get("exp_avg"), state.get("exp_avg_sq")]
                if group["lr"] * strength >= 0.5:  # lerp switches formulas there
                    return False
                if not all(t is None or _plain_cpu_float32(t, param.shape) for t in tensors):
                    return False
        return True


def _plain_cpu_float32(tensor, shape):
    """Whether the kernel can take ``tensor``: dense, contiguous float32 on the CPU, of ``shape``."""
    return (
        tensor.device.type == "cpu"
        and tensor.dtype == torch.float32
        and tensor.layout == torch.strided
        and tensor.is_contiguous()
        and tensor.shape == shape
    )
