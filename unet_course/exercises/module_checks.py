"""How a coding exercise's module is checked against ``unet_lib``'s (exercises 1.4 and 2.4):
the parameter count first, then the student's parameters loaded into a copy of the reference,
paired in the order their layers run, whatever their names, and the outputs compared on random
inputs, in evaluation and in training mode; each difference found is told with a hint."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from unet_lib.models import count_parameters

from ..checking import NotYet, code_answered, run_answer


def _in_running_order(module: nn.Module, x: torch.Tensor) -> list[nn.Parameter]:
    """``module``'s parameters in the order its layers run on ``x`` (then any it did not
    use, in the order they were created): the order of creation is the student's choice."""
    called: list[nn.Module] = []
    hooks = [m.register_forward_pre_hook(lambda m, args: called.append(m))
             for m in module.modules()]
    try:
        with torch.no_grad():
            run_answer(module, x, what=f"your module, called on a {tuple(x.shape)} input")
    finally:
        for hook in hooks:
            hook.remove()
    ordered: list[nn.Parameter] = []
    for params in [*(m.parameters(recurse=False) for m in called), module.parameters()]:
        ordered += [p for p in params if all(p is not q for q in ordered)]
    return ordered


def _copy_weights(source: nn.Module, target: nn.Module, what: str, x: torch.Tensor) -> None:
    """Load ``source``'s parameters into ``target``'s, whatever their names, both taken in the
    order their layers run on ``x``: each of ``target``'s takes the first unused one of
    ``source`` of its shape, else of its number of elements (a 1×1 convolution's weights
    written as an ``nn.Linear``'s)."""
    student_params = _in_running_order(source, x)
    reference_params = _in_running_order(target, x)
    unused = list(range(len(student_params)))
    pairs = []
    for same in (lambda a, b: a.shape == b.shape, lambda a, b: a.numel() == b.numel()):
        for reference_param in reference_params:
            if any(r is reference_param for r, _ in pairs):
                continue
            match = next((i for i in unused if same(student_params[i], reference_param)), None)
            if match is not None:
                unused.remove(match)
                pairs.append((reference_param, student_params[match]))
    if len(pairs) < len(reference_params) or unused:
        shapes = [tuple(p.shape) for p in student_params]
        raise NotYet(f"Not yet: your {what} has parameters of shapes "
                     f"{_listed(shapes)}; unet_lib's has "
                     f"{[tuple(p.shape) for p in reference_params]}. Hint: "
                     + (_one_layer_per_channel(shapes, reference_params)
                        or "check each layer's channels, kernel size and bias."))
    with torch.no_grad():
        for reference_param, student_param in pairs:
            reference_param.copy_(student_param.reshape(reference_param.shape))


def _listed(shapes: list[tuple]) -> str:
    """Parameter shapes as a list, a run of one shape said once with its count."""
    runs: list[list] = []
    for shape in shapes:
        if runs and runs[-1][0] == shape:
            runs[-1][1] += 1
        else:
            runs.append([shape, 1])
    return "[" + ", ".join(f"{n} × {shape}" if n > 1 else str(shape) for shape, n in runs) + "]"


def _one_layer_per_channel(shapes: list[tuple], reference_params: list) -> str | None:
    """The hint for a depthwise layer written as one single-channel convolution per channel
    (several (1, 1, k, k) weights where unet_lib has one (C, 1, k, k)), else None."""
    for reference in reference_params:
        if reference.dim() == 4 and reference.shape[0] > 1 and reference.shape[1] == 1:
            single = (1, 1, *reference.shape[2:])
            if shapes.count(single) == reference.shape[0]:
                return (f"your {reference.shape[0]} single-channel convolutions compute the "
                        f"depthwise part, but as {reference.shape[0]} layers run one after "
                        f"another; one convolution whose groups give each channel its own "
                        f"filter does them in one call (its weight "
                        f"{tuple(reference.shape)}).")
    return None


def compare_tensors(yours: torch.Tensor, reference: torch.Tensor, what: str, hint: str) -> None:
    """Raise :class:`NotYet`, naming ``what`` and giving ``hint``, unless ``yours`` is a tensor
    of ``reference``'s shape and values (to 1e-5, relative 1e-4)."""
    if not isinstance(yours, torch.Tensor):
        raise NotYet(f"Not yet: {what} should be a tensor, got {type(yours).__name__}.")
    if yours.shape != reference.shape:
        raise NotYet(f"Not yet: {what} has shape {tuple(yours.shape)}; unet_lib's has "
                     f"{tuple(reference.shape)}. Hint: {hint}")
    if not torch.allclose(yours, reference, atol=1e-5, rtol=1e-4):
        worst = (yours - reference).abs().flatten().argmax().item()
        raise NotYet(f"Not yet: {what} has the right shape but different values (the largest "
                     f"difference is at flat position {worst}). Hint: {hint}")


def check_module(build: Callable[..., nn.Module], cases: list[tuple[nn.Module, tuple]],
                 what: str, hint: str, count_hints: Callable[..., dict[int, str]] | None = None
                 ) -> None:
    """Check the module ``build(*args)`` against ``reference`` for each ``(reference, args)``
    of ``cases`` (two sets of arguments: a module that ignores one of them fails one):
    parameters (``count_hints(*args)``: student's count minus unet_lib's → what that
    difference suggests), then outputs on random inputs in evaluation and in training mode."""
    for number, (reference, args) in enumerate(cases):
        made = f"{what} for {args}"
        module = run_answer(build, *args, what=f"building your {made}")
        if not code_answered(module, f"building your {made}" if number else None):
            return
        _module_matches(module, reference, args, made, hint,
                        count_hints(*args) if count_hints else {})
    print(f"Right: your {what} computes what unet_lib's does, on random inputs, for "
          f"{' and '.join(str(args) for _, args in cases)}.")


def _module_matches(module, reference: nn.Module, args: tuple, what: str, hint: str,
                    count_hints: dict[int, str]) -> None:
    """:func:`check_module` for one ``module`` the student built from ``args``."""
    if not isinstance(module, nn.Module):
        raise NotYet(f"Not yet: {what} should return an nn.Module, got {type(module).__name__}.")
    if count_parameters(module) != count_parameters(reference):
        difference = count_parameters(module) - count_parameters(reference)
        raise NotYet(f"Not yet: your {what} has {abs(difference):,} parameters "
                     f"{'too many' if difference > 0 else 'too few'}. Hint: "
                     f"{count_hints.get(difference, hint)}")
    x = torch.randn(2, args[0], 12, 12)
    was_training = module.training
    try:  # the student's module is left in its mode, whatever the check finds
        module.eval()
        _copy_weights(module, reference, what, x)
        for mode in ("eval", "train"):  # a layer acting in training only (dropout) shows there
            module.train(mode == "train")
            reference.train(mode == "train")
            with torch.no_grad():
                yours = run_answer(module, x, what=f"your {what}, called on a "
                                                   f"(2, {args[0]}, 12, 12) input")
                expected = reference(x)
                if (isinstance(yours, torch.Tensor) and yours.shape == expected.shape
                        and yours.min() < 0 <= expected.min()):
                    raise NotYet(f"Not yet: the output of your {what} has negative values, "
                                 f"which unet_lib's never has. Hint: the block ends with a "
                                 f"ReLU, after its second convolution too.")
                compare_tensors(yours, expected, f"the output of your {what}"
                                + (" in training mode (model.train())" if mode == "train"
                                   else ""),
                                hint if mode == "eval" else "a layer that acts only while "
                                "training (dropout, batch norm) is no part of this block")
    finally:
        module.train(was_training)
