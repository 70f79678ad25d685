"""Chapter 4's coding exercise: one training step by hand, the five lines ``fit()`` runs for
every batch (gradients cleared, forward, loss, backward, the optimizer's step). The check runs
the student's step and a reference step side by side on two copies of one small U-Net, with
AdamW as the course trains, and compares the loss each returns and the weights after each of
three steps; a step that forgets to clear the gradients only shows from the second on. (The
notebooks call it as ``exercises.check_train_step``.)"""

from __future__ import annotations

import copy
import math
from typing import Callable

import torch
from torch import nn

from unet_lib.models import UNet

from ..checking import NOT_ANSWERED, NotYet, is_number, own_randomness, plain, raised

#: steps the check runs: enough for gradients that pile up to show, and Adam's moments
CHECKED_STEPS = 3


def reference_step(model: nn.Module, images: torch.Tensor, masks: torch.Tensor,
                   optimizer: torch.optim.Optimizer, loss_fn: nn.Module,
                   clear: bool = True, squash: bool = False) -> float:
    """One training step as ``fit()`` takes it (without mixed precision). Two mistakes the
    check recognises: ``clear=False`` leaves the last step's gradients in place, ``squash``
    puts a sigmoid before a loss that takes logits."""
    if clear:
        optimizer.zero_grad()
    output = model(images)
    loss = loss_fn(torch.sigmoid(output) if squash else output, masks)
    loss.backward()
    optimizer.step()
    return loss.item()


def _batches(steps: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``steps`` batches of two random (4, 32, 32) images and (3, 32, 32) 0/1 masks."""
    generator = torch.Generator().manual_seed(1)
    return [(torch.randn(2, 4, 32, 32, generator=generator),
             (torch.rand(2, 3, 32, 32, generator=generator) < 0.2).float())
            for _ in range(steps)]


def _weights_equal(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.allclose(p, q, atol=1e-6, rtol=1e-5)
               for p, q in zip(a.parameters(), b.parameters()))


def _fresh(model: nn.Module) -> tuple[nn.Module, torch.optim.Optimizer]:
    twin = copy.deepcopy(model)
    return twin, torch.optim.AdamW(twin.parameters(), lr=1e-3, weight_decay=1e-2)


@own_randomness
def check_train_step(train_step: Callable[..., float]) -> None:
    """Exercise 4.5. ``train_step(model, images, masks, optimizer, loss_fn)`` must take one
    optimizer step on the batch and return the batch's loss (before the step) as a number."""
    torch.manual_seed(0)
    # with batch norm, so that a step that runs the model in evaluation mode shows
    start = UNet(base_filters=4, depth=2, batch_norm=True).train()
    loss_fn = nn.BCEWithLogitsLoss()
    (yours, your_optimizer), (right, optimizer) = _fresh(start), _fresh(start)
    piled, piled_optimizer = _fresh(start)  # gradients never cleared
    squashed, squashed_optimizer = _fresh(start)  # a sigmoid before BCE with logits
    for number, (images, masks) in enumerate(_batches(CHECKED_STEPS), start=1):
        before = copy.deepcopy(yours)
        what = f"your train_step (step {number})"
        try:
            loss = train_step(yours, images, masks, your_optimizer, loss_fn)
        except Exception as error:  # the student's code: what it raised, not a traceback
            hint = (". Hint: call backward() on the loss, a tensor, before turning it into a "
                    "number with .item()" if "has no attribute 'backward'" in str(error) else
                    ". Hint: the gradients reach the weights through loss.backward(); "
                    "compute the loss from model(images), not from a copy that was detached"
                    if "does not require grad" in str(error) else "")
            raise raised(what, error, hint) from None
        expected = reference_step(right, images, masks, optimizer, loss_fn)
        reference_step(piled, images, masks, piled_optimizer, loss_fn, clear=False)
        reference_step(squashed, images, masks, squashed_optimizer, loss_fn, squash=True)
        moved = not _weights_equal(before, yours)
        if loss is None or loss is Ellipsis:
            backward_ran = any(p.grad is not None for p in yours.parameters())
            if number == 1 and not moved and not backward_ran:
                print(NOT_ANSWERED)  # the skeleton, or a step that computed nothing of use
                return
            if not moved:
                raise NotYet(f"Not yet: {what} returned {loss!r} and moved no weight, though "
                             f"the gradients were computed. Hint: after loss.backward(), "
                             f"optimizer.step() moves the weights; then return the batch's "
                             f"loss as a number (loss.item()).")
            raise NotYet(f"Not yet: {what} returned {loss!r}. Hint: return the batch's loss "
                         f"as a number (loss.item()), for the history of the run.")
        if not yours.training:
            raise NotYet(f"Not yet: {what} left the model in evaluation mode (model.eval()). "
                         f"Hint: a training step runs the model as it trains (model.train(): "
                         f"batch norm then normalizes with the batch's own statistics).")
        if isinstance(loss, torch.Tensor):
            raise NotYet(f"Not yet: {what} returned a tensor. Hint: return loss.item(), a "
                         f"Python number: the tensor keeps the step's whole graph alive, "
                         f"batch after batch, in the run's history.")
        if moved and not your_optimizer.state:
            raise NotYet(f"Not yet: {what} moved the weights with an optimizer of its own. "
                         f"Hint: use the optimizer you are given: it carries AdamW's moments "
                         f"from one step to the next.")
        if not moved:
            raise NotYet(f"Not yet: {what} left the weights as they were. Hint: the weights "
                         f"change only in optimizer.step(), after loss.backward() has given "
                         f"them gradients (in that order, and the gradients cleared before "
                         f"backward, not between it and the step).")
        if not _weights_equal(yours, right):
            hint = ("the gradients of the step before were added to this step's: clear them "
                    "(optimizer.zero_grad()) at the start of every step"
                    if _weights_equal(yours, piled) else
                    "the loss takes logits (BCE *with logits* applies the sigmoid itself): "
                    "give it model(images) as it is" if _weights_equal(yours, squashed) else
                    "one step is: clear the gradients, compute the loss of the model's output "
                    "on this batch, loss.backward(), optimizer.step() — once each")
            raise NotYet(f"Not yet: after {what} the weights differ from one AdamW step's. "
                         f"Hint: {hint}.")
        loss = plain(loss)
        if not is_number(loss) or not math.isclose(loss, expected, rel_tol=1e-5):
            raise NotYet(f"Not yet: {what} returned {loss!r}, not the batch's loss. Hint: "
                         f"return loss.item() of the loss computed before the step.")
        if not all(torch.allclose(a, b, atol=1e-6, rtol=1e-5)
                   for a, b in zip(yours.buffers(), right.buffers())):
            raise NotYet(f"Not yet: after {what} batch norm's running statistics differ from "
                         f"one step's. Hint: run the model once per step: each forward pass "
                         f"in training mode moves those averages again.")
    print(f"Right: your train_step moves the weights as fit()'s step does, {CHECKED_STEPS} "
          f"steps in a row, and returns each batch's loss.")
